/* SIGINT/SIGTERM while VMs run: turned into a readable eventfd every running VM watches. */
#ifndef KRUN_VMM_VMM_SIGNAL_H
#define KRUN_VMM_VMM_SIGNAL_H

/* Install the handlers (first caller) and return the eventfd to watch, or -errno. */
int vmm_signal_register(void) __attribute__((warn_unused_result));
/* Restore the previous handlers after the last running VM is gone. */
void vmm_signal_unregister(void);
/* The signal that arrived (for the message), or 0. */
int vmm_signal_last(void);

#endif
