/* chroot_vm NEWROOT COMMAND [ARG...]: run COMMAND from NEWROOT in a microVM (public API only). */
#include <libkrun.h>

#include <stdio.h>
#include <string.h>

#include "vm_options.h"

int main(int argc, char **argv)
{
	struct vm_options o;
	uint32_t ctx;
	int ret = vm_options_parse("chroot_vm",
				   "Runs COMMAND with NEWROOT as its root directory inside a KVM microVM;\n"
				   "stdin, stdout, stderr and the exit status are COMMAND's.",
				   NULL, argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (vm_options_configure(&o, &ctx))
		return 1;
	/* Returns only if the VM could not start; otherwise the process exits with the guest. */
	ret = krun_start_enter(ctx);
	fprintf(stderr, "chroot_vm: cannot start the VM: %s\n", strerror(ret < 0 ? -ret : ret));
	return 1;
}
