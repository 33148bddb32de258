/* TSI proxy: which resolver KRUN_TSI_OP_DNS connections reach (DNS over TCP, RFC 7766). */
#define LOG_MODULE "tsi"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "devices/tsi/tsi_priv.h"
#include "util/log.h"

#define DNS_PORT 53

/* "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" into a CONNECT request; false if malformed. */
static bool parse_server(const char *s, struct krun_tsi_request *r)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *end;
	unsigned long pn = DNS_PORT;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		port = end[1] ? end + 2 : NULL;
		s++;
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			end = NULL;     /* a bare IPv6 address */
		port = end ? end + 1 : NULL;
		if (!end)
			end = s + strlen(s);
	}
	if ((size_t)(end - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	if (port) {
		char *e;
		pn = strtoul(port, &e, 10);
		if (*e || !*port || pn == 0 || pn > 65535)
			return false;
	}
	r->port = (uint16_t)pn;
	if (inet_pton(AF_INET, host, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, host, r->addr) == 1)
		r->family = AF_INET6;
	return r->family != 0;
}

/* The first "nameserver" line of the host's resolver configuration. */
static bool from_resolv_conf(struct krun_tsi_request *r)
{
	char line[256], addr[128];
	bool ok = false;
	FILE *f = fopen("/etc/resolv.conf", "re");

	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f))
		if (sscanf(line, " nameserver %127s", addr) == 1)
			ok = parse_server(addr, r);
	fclose(f);
	return ok;
}

void tsi_dns_config(struct tsi_proxy *p, const char *server)
{
	memset(&p->dns, 0, sizeof(p->dns));
	p->dns.type = SOCK_STREAM;
	if (server ? !parse_server(server, &p->dns) : !from_resolv_conf(&p->dns)) {
		memset(&p->dns, 0, sizeof(p->dns));
		if (server)
			log_warn("tsi: DNS server '%s' is not IP[:PORT]; guest DNS is off", server);
		else
			log_debug("tsi: no nameserver in /etc/resolv.conf; guest DNS is off");
	}
}
