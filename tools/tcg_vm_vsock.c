/* tcg_vm: virtio-vsock served over vhost-user, with the TSI proxy as its backend (guest networking). */
#include "tcg_vm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/launch.h"
#include "devices/tsi/tsi.h"
#include "devices/vsock/vsock.h"
#include "util/evloop.h"
#include "virtio/vhost_user.h"

static int make_device(struct tcg_vm *t)
{
	return launch_create_vsock(t->spec, t->vsock.loop, &t->vsock.dev);
}

int tcg_vm_vsock_prepare(struct tcg_vm *t)
{
	const char *env = getenv("KRUN_TCG_VSOCK");
	char path[PATH_MAX];
	int ret;

	t->vsock.listen_fd = -1;
	t->use_vsock = !env || strcmp(env, "0") != 0;
	if (!t->use_vsock)
		return 0;
	t->vsock.loop = evloop_create();
	if (!t->vsock.loop)
		return -ENOMEM;
	ret = make_device(t);
	if (ret) {
		fprintf(stderr, "tcg_vm: cannot create the vsock device: %s\n", strerror(-ret));
		return ret;
	}
	tcg_vm_path(t, "vsock", path, sizeof(path));
	t->vsock.listen_fd = vhost_user_listen(path);
	return t->vsock.listen_fd < 0 ? t->vsock.listen_fd : 0;
}
