// Key layouts for tests/layouts.rs: structs with alignment padding,
// nested and anonymous members, byte arrays, network-order typedefs, a
// scalar key and a map that declares sizes only. `fill` writes known keys.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <exporter.bpf.h>

// A u8 followed by a u64: 3 bytes of padding nobody writes in YAML.
struct op_key {
	u32 dev;
	u8 op;
	u64 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct op_key);
	__type(value, u64);
} op_latency_seconds SEC(".maps");

struct flow_key {
	u32 saddr;
	__be16 sport;
	u8 proto;
	char comm[16];
	struct {
		u32 pid;
		u32 tgid;
	} ids;
	union {
		u32 ifindex;
		u32 raw;
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow_key);
	__type(value, u64);
} flow_packets_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} scalar_hits_total SEC(".maps");

// Sizes only: no key type to bind to.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(key_size, 8);
	__uint(value_size, 8);
} sized_only_total SEC(".maps");

// The same histogram as `hists`, one key per bucket as the reference keeps
// histograms.
struct keyed_slot {
	u32 k;
	u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct keyed_slot);
	__type(value, u64);
} hist_by_slot SEC(".maps");

// An array keyed by a struct: the kernel wants a plain u32 key type for
// arrays, so libbpf creates this map again without BTF, and its key type
// must come from the object as opened.
struct slot_key {
	u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, struct slot_key);
	__type(value, u64);
} array_hist_seconds SEC(".maps");

// Filled from user space with thousands of keys, for series limits.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u64);
} many_total SEC(".maps");

// Four entries, thirty writers: the shared helpers count what is refused.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} tiny_total SEC(".maps");

// Not metric maps, for describe to skip.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct big_value {
	u64 a;
	u64 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, struct big_value);
} pairs SEC(".maps");

// Struct values: several metrics from one map, summed over CPUs or not.
struct ee_flow_stats {
	u64 bytes;
	u32 packets;
	u16 drops;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, struct ee_flow_stats);
} flow_stats SEC(".maps");

// A histogram as libbpf-tools keep one: the bucket counts in the value.
struct hist {
	u32 slots[8];
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

static void add_(void *map, void *key, u64 n)
{
	u64 *v = bpf_map_lookup_elem(map, key);

	if (v)
		__sync_fetch_and_add(v, n);
	else
		bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
}

SEC("syscall")
int fill(void *ctx)
{
	struct op_key ok = {};
	struct flow_key fk = {};
	u32 k = 7;
	u64 sk = 0x0102030405060708ULL;

	// Major 4095 names no device anywhere: majorminor says unknown.
	ok.dev = 0xFFF01;
	ok.op = 1;
	for (int slot = 0; slot < 4; slot++) {
		ok.slot = slot;
		add_(&op_latency_seconds, &ok, slot + 1);
	}
	fk.saddr = bpf_htonl(0x0a000001);
	fk.sport = bpf_htons(443);
	fk.proto = 6;
	__builtin_memcpy(fk.comm, "curl", 5);
	fk.ids.pid = 42;
	fk.ids.tgid = 40;
	fk.ifindex = 1;
	add_(&flow_packets_total, &fk, 3);
	add_(&scalar_hits_total, &k, 5);
	add_(&sized_only_total, &sk, 2);
	// Referenced, so tests find it among the program's maps; user space
	// fills it.
	u64 *many = bpf_map_lookup_elem(&many_total, &sk);
	if (many)
		__sync_fetch_and_add(many, 0);
	for (u32 w = 0; w < 30; w++)
		ee_map_add(&tiny_total, &w, 1);
	struct slot_key slot = { .slot = 2 };
	add_(&array_hist_seconds, &slot, 5);

	struct big_value pair = { .a = 10, .b = 20 };
	bpf_map_update_elem(&pairs, &k, &pair, BPF_ANY);
	// Per-CPU: this CPU's copy only; the others stay zero.
	struct ee_flow_stats fs = { .bytes = 1500, .packets = 3, .drops = 1 };
	bpf_map_update_elem(&flow_stats, &k, &fs, BPF_ANY);
	struct hist h = {};
	for (int i = 0; i < 8; i++) {
		struct keyed_slot ks = { .k = k, .slot = i };
		u64 n = i;

		h.slots[i] = i;
		bpf_map_update_elem(&hist_by_slot, &ks, &n, BPF_ANY);
	}
	__builtin_memcpy(h.comm, "sleep", 6);
	bpf_map_update_elem(&hists, &k, &h, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
