/* Test guest: virtio-console multiport (virtio 1.2 section 5.3.6): the control handshake, a port's name, its data. */
#include "guest.h"

#define VIRTIO_ID_CONSOLE 3
#define F_MULTIPORT (1u << 1)
#define EV_DEVICE_READY 0
#define EV_PORT_ADD 1
#define EV_PORT_READY 3
#define EV_PORT_OPEN 6
#define EV_PORT_NAME 7
/* 5.3.2: port 0 on queues 0/1, control on 2/3, port 1 on 4/5. */
#define CTRL_RXQ 2
#define CTRL_TXQ 3
#define PORT1_TXQ 5
#define MSG_MAX 72

struct ctl {
	uint32_t id;
	uint16_t event;
	uint16_t value;
};

static struct vq mp_vqs[6];
static uint8_t rx_buf[MSG_MAX];

static void send_ctl(struct vdev *d, uint32_t id, uint16_t event, uint16_t value)
{
	static struct ctl m;
	const void *bufs[1] = { &m };
	uint32_t lens[1] = { sizeof(m) };

	m = (struct ctl){ id, event, value };
	vq_post(d, &mp_vqs[CTRL_TXQ], bufs, lens, 1, 0);
	vq_wait(d, &mp_vqs[CTRL_TXQ]);
}

/* One receive buffer at a time: the device sends the next message once it gets one. */
static int64_t recv_ctl(struct vdev *d, struct ctl *m)
{
	const void *bufs[1] = { rx_buf };
	uint32_t lens[1] = { MSG_MAX };
	int64_t n;

	vq_post(d, &mp_vqs[CTRL_RXQ], bufs, lens, 0, 1);
	n = vq_wait(d, &mp_vqs[CTRL_RXQ]);
	memset(m, 0xff, sizeof(*m));
	if (n >= (int64_t)sizeof(*m))
		memcpy(m, rx_buf, sizeof(*m));
	return n;
}

static bool expect(struct vdev *d, uint32_t id, uint16_t event, uint16_t value)
{
	struct ctl m;

	return recv_ctl(d, &m) == sizeof(m) && m.id == id && m.event == event && m.value == value;
}

static void report(bool ok, const char *what)
{
	out_str(ok ? "guest: ok " : "guest: FAIL ");
	out_str(what);
	out_str("\n");
}

/* t.port=NAME: port 1 must be announced with that name; "multiport data\n" goes out on it. */
int console_mp_scenario(const char *cmdline)
{
	static const char data[] = "multiport data\n";
	const void *bufs[1] = { data };
	uint32_t lens[1] = { sizeof(data) - 1 };
	struct vdev con;
	char want[64];
	struct ctl m;
	bool added, named;
	int64_t n;

	if (vdev_find(cmdline, VIRTIO_ID_CONSOLE, &con) || !cmdline_get(cmdline, "t.port", want, sizeof(want)))
		return 5;
	console_attach(0, 0);
	if (vdev_init_features(&con, mp_vqs, 6, F_MULTIPORT))
		return 4;       /* no console left to say why: the host sees status 4 */
	console_attach(&con, &mp_vqs[1]);
	send_ctl(&con, 0, EV_DEVICE_READY, 1);
	added = expect(&con, 0, EV_PORT_ADD, 0) && expect(&con, 1, EV_PORT_ADD, 0);
	report(added, "PORT_ADD for ports 0 and 1 after DEVICE_READY");
	send_ctl(&con, 1, EV_PORT_READY, 1);
	named = expect(&con, 1, EV_PORT_OPEN, 1);
	n = recv_ctl(&con, &m);
	named = named && m.id == 1 && m.event == EV_PORT_NAME && n == (int64_t)(sizeof(m) + strlen(want)) &&
		!memcmp(rx_buf + sizeof(m), want, strlen(want));
	report(named, "PORT_OPEN and PORT_NAME after PORT_READY");
	send_ctl(&con, 1, EV_PORT_OPEN, 1);
	vq_post(&con, &mp_vqs[PORT1_TXQ], bufs, lens, 1, 0);
	n = vq_wait(&con, &mp_vqs[PORT1_TXQ]);
	report(n >= 0, "data written on port 1");
	return added && named && n >= 0 ? 0 : 4;
}
