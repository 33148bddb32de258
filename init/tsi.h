/*
 * Transparent socket impersonation, guest side: the program runs under a seccomp filter whose
 * user notifications (connect, getpeername, getsockname, setsockopt, sendto with an address,
 * sendmsg) go to a supervisor child of PID 1, which hands impersonated sockets to the host
 * proxy over vsock and carries unconnected UDP itself (common/krun_tsi.h).
 */
#ifndef KRUN_INIT_TSI_H
#define KRUN_INIT_TSI_H

/* PID 1, before the program's fork: starts the supervisor if the VM has a vsock device. */
void tsi_start(void);
/*
 * The program's child, still root (so no NO_NEW_PRIVS is needed and setuid programs keep
 * working): installs the filter and sends its listener to the supervisor. No-op without TSI.
 * KRUN_TSI_SENDMSG=1 in the program's environment envp also traps sendmsg (tsi.c).
 */
void tsi_child_install(char *const envp[]);
/* PID 1, after the fork: the child's end of the channel is no longer ours to hold. */
void tsi_parent_forked(void);
/*
 * PID 1, once the program has ended and before the remaining processes are stopped: bytes
 * guest programs wrote to port-map connections reach the host first (bounded wait).
 */
void tsi_finish(void);
/*
 * PID 1, after the remaining processes are stopped, before the reboot: waits until the host
 * has taken the bytes of every vsock connection they closed, at most until TSI_SETTLE_MS
 * after tsi_finish (both bounds together; a host peer that never reads cannot hold the VM).
 */
#define TSI_SETTLE_MS 3000
void tsi_settle(void);

#endif
