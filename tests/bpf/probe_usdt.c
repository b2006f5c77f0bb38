// Fires USDT probe ee_probe_test:request N times with a signed size
// (-1, 0, 1 in turn) and a route string, for the probes test: the counts
// a config of `usdt/` probes gives are known exactly.
#include <stdlib.h>
#include <sys/sdt.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	const char *route = argc > 2 ? argv[2] : "/";

	for (int i = 0; i < n; i++) {
		long size = i % 3 - 1;

		DTRACE_PROBE2(ee_probe_test, request, size, route);
	}
	return 0;
}
