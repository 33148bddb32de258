/* virtio-vsock packet headers (virtio 1.2 section 5.10.6): copied out, built, credit arithmetic. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "devices/vsock/vsock_priv.h"
#include "util/iov.h"

/* The header is copied out of the readable part before parsing, so the guest cannot change it. */
int vsock_pkt_read(const struct virtq_elem *elem, struct vsock_pkt *pkt)
{
	struct virtio_vsock_hdr h;

	if (iov_to_buf(elem->iov, elem->out_num, 0, &h, sizeof(h)) != sizeof(h))
		return -EINVAL;
	pkt->src_cid = le64toh(h.src_cid);
	pkt->dst_cid = le64toh(h.dst_cid);
	pkt->src_port = le32toh(h.src_port);
	pkt->dst_port = le32toh(h.dst_port);
	pkt->len = le32toh(h.len);
	pkt->type = le16toh(h.type);
	pkt->op = le16toh(h.op);
	pkt->flags = le32toh(h.flags);
	pkt->buf_alloc = le32toh(h.buf_alloc);
	pkt->fwd_cnt = le32toh(h.fwd_cnt);
	return 0;
}

int vsock_pkt_write(const struct virtq_elem *elem, const struct vsock_pkt *pkt)
{
	struct virtio_vsock_hdr h = {
		.src_cid = htole64(pkt->src_cid),
		.dst_cid = htole64(pkt->dst_cid),
		.src_port = htole32(pkt->src_port),
		.dst_port = htole32(pkt->dst_port),
		.len = htole32(pkt->len),
		.type = htole16(pkt->type),
		.op = htole16(pkt->op),
		.flags = htole32(pkt->flags),
		.buf_alloc = htole32(pkt->buf_alloc),
		.fwd_cnt = htole32(pkt->fwd_cnt),
	};

	if (iov_from_buf(&elem->iov[elem->out_num], elem->in_num, 0, &h, sizeof(h)) != sizeof(h))
		return -ENOBUFS;
	return 0;
}

/* 5.10.6.3: every packet carries our buf_alloc and fwd_cnt, so any packet is a credit update. */
void vsock_pkt_for_conn(const struct vsock_conn *c, uint16_t op, struct vsock_pkt *pkt)
{
	*pkt = (struct vsock_pkt){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = c->v->guest_cid,
		.src_port = c->local_port,
		.dst_port = c->peer_port,
		.type = c->type,
		.op = op,
		.buf_alloc = c->v->buf_size,
		.fwd_cnt = c->fwd_cnt,
	};
}

void vsock_pkt_rst_reply(const struct vsock *v, const struct vsock_pkt *in, struct vsock_pkt *out)
{
	*out = (struct vsock_pkt){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = in->dst_port,
		.dst_port = in->src_port,
		/* Linux drops (and answers) a packet whose type is not its socket's. */
		.type = in->type == VIRTIO_VSOCK_TYPE_SEQPACKET ? in->type : VIRTIO_VSOCK_TYPE_STREAM,
		.op = VIRTIO_VSOCK_OP_RST,
	};
}

/*
 * 5.10.6.3: we may send buf_alloc - (tx_cnt - fwd_cnt) more bytes. The guest's numbers are
 * untrusted: a fwd_cnt ahead of what we sent, or in-flight beyond buf_alloc, means no credit
 * (the guest can only stall its own connection, never make us exceed what it advertised).
 */
uint32_t vsock_pkt_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}
