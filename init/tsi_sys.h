/*
 * Kernel ABI the TSI supervisor needs (seccomp user notification, classic BPF, vsock addresses,
 * socket diagnostics), spelled out here because the musl build of the init has no <linux/...>
 * headers. Values are the kernel's uapi (include/uapi/linux/seccomp.h, filter.h, audit.h,
 * vm_sockets.h, netlink.h, sock_diag.h, inet_diag.h).
 */
#ifndef KRUN_INIT_TSI_SYS_H
#define KRUN_INIT_TSI_SYS_H

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* Classic BPF (struct sock_filter / sock_fprog). */
struct tsi_bpf_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};

struct tsi_bpf_prog {
	unsigned short len;
	struct tsi_bpf_insn *filter;
};

#define TSI_BPF_LD_W_ABS 0x20   /* BPF_LD | BPF_W | BPF_ABS */
#define TSI_BPF_JEQ_K 0x15      /* BPF_JMP | BPF_JEQ | BPF_K */
#define TSI_BPF_RET_K 0x06      /* BPF_RET | BPF_K */

struct tsi_seccomp_data {
	int nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};

#define TSI_SECCOMP_DATA_NR 0
#define TSI_SECCOMP_DATA_ARCH 4
#define TSI_SECCOMP_DATA_ARG_LO(i) (16 + 8 * (i))   /* little-endian: low word first */
#define TSI_SECCOMP_DATA_ARG_HI(i) (20 + 8 * (i))

#define TSI_AUDIT_ARCH_X86_64 0xc000003eu
#define TSI_SECCOMP_SET_MODE_FILTER 1
#define TSI_SECCOMP_GET_NOTIF_SIZES 3
#define TSI_SECCOMP_FILTER_FLAG_NEW_LISTENER (1u << 3)
#define TSI_SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1u << 5)
#define TSI_SECCOMP_RET_ALLOW 0x7fff0000u
#define TSI_SECCOMP_RET_USER_NOTIF 0x7fc00000u

struct tsi_notif {
	uint64_t id;
	uint32_t pid;
	uint32_t flags;
	struct tsi_seccomp_data data;
};

struct tsi_notif_resp {
	uint64_t id;
	int64_t val;
	int32_t error;
	uint32_t flags;
};

struct tsi_notif_addfd {
	uint64_t id;
	uint32_t flags;
	uint32_t srcfd;
	uint32_t newfd;
	uint32_t newfd_flags;
};

struct tsi_notif_sizes {
	uint16_t seccomp_notif;
	uint16_t seccomp_notif_resp;
	uint16_t seccomp_data;
};

#define TSI_USER_NOTIF_FLAG_CONTINUE 1u
#define TSI_ADDFD_FLAG_SETFD 1u
#define TSI_IOCTL_NOTIF_RECV _IOWR('!', 0, struct tsi_notif)
#define TSI_IOCTL_NOTIF_SEND _IOWR('!', 1, struct tsi_notif_resp)
#define TSI_IOCTL_NOTIF_ID_VALID _IOW('!', 2, uint64_t)
#define TSI_IOCTL_NOTIF_ADDFD _IOW('!', 3, struct tsi_notif_addfd)

/* struct sockaddr_vm */
struct tsi_sockaddr_vm {
	sa_family_t svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	uint8_t svm_flags;
	unsigned char svm_zero[3];
};

#define TSI_VMADDR_CID_HOST 2u
/* Socket options at level AF_VSOCK (u64 values). */
#define TSI_SO_VM_SOCKETS_BUFFER_SIZE 0
#define TSI_SO_VM_SOCKETS_BUFFER_MAX_SIZE 2

/* Socket diagnostics over netlink (include/uapi/linux/netlink.h, sock_diag.h, inet_diag.h). */
#define TSI_NETLINK_SOCK_DIAG 4
#define TSI_SOCK_DIAG_BY_FAMILY 20
#define TSI_NLM_F_REQUEST 0x1
#define TSI_NLM_F_DUMP 0x300
#define TSI_NLMSG_ERROR 2
#define TSI_NLMSG_DONE 3
#define TSI_TCP_LISTEN 10

struct tsi_nlmsghdr {
	uint32_t nlmsg_len;
	uint16_t nlmsg_type;
	uint16_t nlmsg_flags;
	uint32_t nlmsg_seq;
	uint32_t nlmsg_pid;
};

struct tsi_inet_diag_sockid {
	uint16_t idiag_sport;   /* network order */
	uint16_t idiag_dport;
	uint32_t idiag_src[4];
	uint32_t idiag_dst[4];
	uint32_t idiag_if;
	uint32_t idiag_cookie[2];
};

struct tsi_inet_diag_req_v2 {
	uint8_t sdiag_family;
	uint8_t sdiag_protocol;
	uint8_t idiag_ext;
	uint8_t pad;
	uint32_t idiag_states;  /* 1 << TCP state */
	struct tsi_inet_diag_sockid id;
};

/* The head of struct inet_diag_msg, as much as we read of each answer. */
struct tsi_inet_diag_msg {
	uint8_t idiag_family;
	uint8_t idiag_state;
	uint8_t idiag_timer;
	uint8_t idiag_retrans;
	struct tsi_inet_diag_sockid id;
};

/* AF_VSOCK socket diagnostics (include/uapi/linux/vm_sockets_diag.h, CONFIG_VSOCKETS_DIAG). */
#define TSI_TCP_ESTABLISHED 1
#define TSI_TCP_CLOSING 11

struct tsi_vsock_diag_req {
	uint8_t sdiag_family;   /* AF_VSOCK */
	uint8_t sdiag_protocol;
	uint16_t pad;
	uint32_t vdiag_states;  /* 1 << TCP state */
	uint32_t vdiag_ino;
	uint32_t vdiag_show;
	uint32_t vdiag_cookie[2];
};

struct tsi_vsock_diag_msg {
	uint8_t vdiag_family;
	uint8_t vdiag_type;
	uint8_t vdiag_state;
	uint8_t vdiag_shutdown;
	uint32_t vdiag_src_cid;
	uint32_t vdiag_src_port;
	uint32_t vdiag_dst_cid;
	uint32_t vdiag_dst_port;
	uint32_t vdiag_ino;     /* 0 once no process holds the socket */
	uint32_t vdiag_cookie[2];
};

#endif
