/* vCPU threads: KVM_RUN loop, exit dispatch (port I/O, MMIO bus, shutdown, faults) and kicks. */
#define LOG_MODULE "vcpu"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/arch.h"
#include "arch/x86_64/layout.h"
#include "util/log.h"

#define KICK_SIGNAL (SIGRTMIN)

static void kick_handler(int sig)
{
	(void)sig;  /* Only interrupts KVM_RUN. */
}

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

int vcpu_create(struct vm *vm, unsigned int id)
{
	struct vcpu *v = &vm->vcpus[id];
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	*v = (struct vcpu){ .vm = vm, .id = id, .fd = -1 };
	if (size < (int)sizeof(struct kvm_run))
		return -EINVAL;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		int err = -errno;
		log_error("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return err;
	}
	v->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	v->run_size = (size_t)size;
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

static void serial_out(struct vcpu *v, uint16_t port, uint8_t byte)
{
	/* COM1 transmit register only (port base, DLAB assumed 0): a debug trace, not a console. */
	if (port != LAYOUT_PORT_SERIAL || byte == '\r')
		return;
	if (byte != '\n' && v->serial_len < sizeof(v->serial_line) - 1) {
		v->serial_line[v->serial_len++] = (char)byte;
		return;
	}
	v->serial_line[v->serial_len] = 0;
	log_debug("vCPU %u serial: %s", v->id, v->serial_line);
	v->serial_len = 0;
}

static void pio_read(struct vcpu *v, uint16_t port, uint8_t *data, unsigned int size)
{
	(void)v;
	memset(data, 0xff, size);
	if (port == LAYOUT_PORT_SERIAL + 5)
		data[0] = 0x60;         /* LSR: transmitter empty, so polling guests never wait */
	else if (port == LAYOUT_PORT_I8042_CMD)
		data[0] = 0;            /* i8042 status: input buffer empty */
}

static void pio_write(struct vcpu *v, uint16_t port, const uint8_t *data, unsigned int size)
{
	struct vm *vm = v->vm;
	uint32_t val = 0;
	uint64_t zero = 0;

	memcpy(&val, data, size > 4 ? 4 : size);
	if (port >= LAYOUT_PORT_SERIAL && port < LAYOUT_PORT_SERIAL_END) {
		serial_out(v, port, data[0]);
	} else if (port == LAYOUT_PORT_I8042_CMD && data[0] == LAYOUT_I8042_RESET) {
		log_info("guest reset through the i8042 controller");
		vm_request_stop(vm, 0);
	} else if (port == LAYOUT_PORT_TEST_EXIT) {
		vm->test_status = (int)(val & 0xff);
		log_debug("test guest exit status %d", vm->test_status);
		vm_request_stop(vm, 0);
	} else if (port == LAYOUT_PORT_TEST_MARK) {
		__atomic_compare_exchange_n(&vm->t_mark_ns, &zero, vm_now_ns(), false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned int size = run->io.size;

	if (size == 0 || size > 4 || run->io.data_offset + (uint64_t)size * run->io.count > v->run_size)
		return;
	for (unsigned int i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			pio_write(v, run->io.port, data, size);
		else
			pio_read(v, run->io.port, data, size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned int len = run->mmio.len > 8 ? 8 : run->mmio.len;
	int ret = mmio_bus_access(&v->vm->bus, run->mmio.phys_addr, run->mmio.data, len,
				  run->mmio.is_write);

	if (ret == -ENOENT)
		log_warn_guest("vCPU %u: %s of %u bytes at unmapped guest address 0x%llx ignored",
			       v->id, run->mmio.is_write ? "write" : "read", len,
			       (unsigned long long)run->mmio.phys_addr);
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "EXCEPTION";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_SYSTEM_EVENT: return "SYSTEM_EVENT";
	default: return "unexpected";
	}
}

static int fault(struct vcpu *v, const char *what)
{
	struct kvm_run *run = v->run;

	log_error("vCPU %u fault: %s (exit reason %u %s)", v->id, what, run->exit_reason,
		  exit_name(run->exit_reason));
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
		log_error("suberror %u%s, %u data words: 0x%llx 0x%llx 0x%llx", run->internal.suberror,
			  run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : "",
			  run->internal.ndata,
			  (unsigned long long)(run->internal.ndata > 0 ? run->internal.data[0] : 0),
			  (unsigned long long)(run->internal.ndata > 1 ? run->internal.data[1] : 0),
			  (unsigned long long)(run->internal.ndata > 2 ? run->internal.data[2] : 0));
	} else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
		log_error("hardware entry failure reason 0x%llx",
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	}
	arch_vcpu_dump(v->fd, &v->vm->mem);
	return -EFAULT;
}

/* 1: keep running; 0: the VM ends in order; <0: vCPU fault. */
static int dispatch(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return 1;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return 1;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return 1;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault is how x86 resets; Linux with reboot=t reboots this way. */
		log_info("vCPU %u: guest reset (triple fault or shutdown)", v->id);
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
		    run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			log_info("vCPU %u: guest %s", v->id,
				 run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "reset" : "powered off");
			return 0;
		}
		return fault(v, "system event (crash)");
	case KVM_EXIT_INTERNAL_ERROR:
		return fault(v, "KVM internal error");
	case KVM_EXIT_FAIL_ENTRY:
		return fault(v, "VM entry failed");
	default:
		return fault(v, "unhandled exit");
	}
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *v = opaque;
	struct vm *vm = v->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (!vm_stopping(vm)) {
		int ret = ioctl(v->fd, KVM_RUN, 0);

		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			arch_vcpu_dump(v->fd, &vm->mem);
			vm_request_stop(vm, -EFAULT);
			break;
		}
		ret = dispatch(v);
		if (ret <= 0)
			vm_request_stop(vm, ret);
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int ret;

	pthread_once(&once, install_kick_handler);
	ret = -pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (ret) {
		log_error("cannot start vCPU %u thread: %s", v->id, strerror(-ret));
		return ret;
	}
	__atomic_store_n(&v->started, true, __ATOMIC_SEQ_CST);
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->run || !__atomic_load_n(&v->started, __ATOMIC_SEQ_CST))
		return;
	/* immediate_exit covers the window before the thread re-enters KVM_RUN. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (!__atomic_load_n(&v->started, __ATOMIC_SEQ_CST))
		return;
	pthread_join(v->thread, NULL);
	v->started = false;
}
