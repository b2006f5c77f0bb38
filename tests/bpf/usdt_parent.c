// A user-space program that hands a parent span to the kernel side through
// USDT probes, as the reference's tracing demos do: set_parent before the
// traced work (a close of an fd no process has), clear_parent after.
#include <stdlib.h>
#include <sys/sdt.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long long trace_hi = 0x0a0b0c0d0e0f1011ULL;
	unsigned long long trace_lo = 0x1213141516171819ULL;
	unsigned long long parent = 0x2222222222222222ULL;
	int rounds = argc > 1 ? atoi(argv[1]) : 5;

	for (int i = 0; i < rounds; i++) {
		DTRACE_PROBE3(ebpf_exporter_test, set_parent, trace_hi, trace_lo, parent);
		close(987655);
		DTRACE_PROBE(ebpf_exporter_test, clear_parent);
		usleep(20000);
	}
	return 0;
}
