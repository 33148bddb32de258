/* TSI guest side: raw IPv4/IPv6 UDP packets (init/tsi_pkt.c). */
#ifndef KRUN_INIT_TSI_PKT_H
#define KRUN_INIT_TSI_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "common/krun_tsi.h"

/* Room for the largest packet tsi_pkt_udp builds. */
#define TSI_PKT_MAX (40u + 8u + KRUN_TSI_DGRAM_MAX)

/*
 * The IP packet carrying len bytes of data from src to dst (same family; addresses in
 * network order, ports in host order) into out; its length, or 0 if it cannot be built.
 */
size_t tsi_pkt_udp(uint8_t *out, size_t size, const struct krun_tsi_dgram *src,
		   const struct krun_tsi_dgram *dst, const void *data, size_t len);
/* The one's complement of a folded 32-bit one's complement sum. */
uint16_t tsi_pkt_fold(uint32_t sum);

#endif
