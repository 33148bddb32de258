/* The guest's vsock device with the TSI proxy as its backend, the same for every transport. */
#include "api/launch.h"

#include <errno.h>
#include <stdlib.h>

#include "devices/tsi/tsi.h"
#include "devices/vsock/vsock.h"

static struct tsi_share *proxy_shares(const struct launch_spec *spec)
{
	struct tsi_share *s = calloc(spec->nr_shares + 1, sizeof(*s));

	for (unsigned int i = 0; s && i < spec->nr_shares; i++)
		s[i] = (struct tsi_share){ spec->shares[i].tag, spec->shares[i].host_path };
	return s;
}

static struct vsock_port_map *port_maps(const struct launch_spec *spec)
{
	struct vsock_port_map *p = calloc(spec->nr_vsock_ports + 1, sizeof(*p));

	for (unsigned int i = 0; p && i < spec->nr_vsock_ports; i++)
		p[i] = (struct vsock_port_map){ spec->vsock_ports[i].port, spec->vsock_ports[i].path,
						spec->vsock_ports[i].listen };
	return p;
}

int launch_create_vsock(const struct launch_spec *spec, struct evloop *loop, struct virtio_dev **out)
{
	struct tsi_share *shares = proxy_shares(spec);
	struct vsock_port_map *ports = port_maps(spec);
	struct tsi_config tc = {
		.loop = loop, .shares = shares, .nr_shares = spec->nr_shares,
		.dns_server = getenv("KRUN_TSI_DNS"),
		.port_map = (const char *const *)spec->port_map, .nr_port_map = spec->nr_port_map,
	};
	/* Every impersonated socket is one vsock connection: allow as many as the proxy does. */
	struct vsock_config vc = { .guest_cid = VSOCK_DEFAULT_GUEST_CID, .ports = ports,
				   .nr_ports = spec->nr_vsock_ports,
				   .max_conns = TSI_DEFAULT_MAX_CONNS + spec->nr_vsock_ports };
	int ret = shares && ports ? 0 : -ENOMEM;

	if (!ret)
		ret = tsi_proxy_create(&tc, &vc.backend, &vc.backend_opaque);
	/* From here the device owns the proxy, also when creating the device fails. */
	if (!ret)
		ret = virtio_vsock_create(&vc, out);
	if (!ret)
		tsi_proxy_set_device(vc.backend_opaque, *out);
	free(shares);
	free(ports);
	return ret;
}
