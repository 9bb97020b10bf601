/*
 * hvtrace-stream: streams this system's ftrace ring buffers home while they
 * are recorded, as the frames of guest_probe::abi::stream (hvtrace_stream.h,
 * generated from it), over the binary data port.
 *
 *   hvtrace-stream PORT [INTERVAL_MS]
 *
 * Sends a Hello, the files a trace-cmd .dat needs (header_page, header_event,
 * the formats of ftrace's events and of every enabled event, kallsyms,
 * printk_formats, trace_clock, uname), then every CPU's pages from
 * trace_pipe_raw as they fill, looking every INTERVAL_MS (default 100) when
 * there was nothing to read. On SIGTERM or SIGINT it turns tracing off, sends
 * what is left, saved_cmdlines and each CPU's stats, then an End frame with
 * the totals, and exits. It holds one page at a time: the guest keeps no
 * more of the trace than ftrace's own buffers.
 *
 * The port is also read: the host writes to it every 20 ms, which makes the
 * guest's virtio console hand over what it has queued, and tells that the
 * host is still there: after 10 s without, the agent stops as on SIGTERM.
 */
#include "hvtrace_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TRACEFS "/sys/kernel/tracing"
#define MAX_CPUS 64
/* A ring-buffer page's header: u64 time stamp, then `commit` (a long). */
#define PAGE_HEADER 16
/* Flags in `commit`'s upper bits: events were lost before this page, and
 * their count is stored after the data. */
#define RB_MISSED_EVENTS (1ul << 31)
#define RB_MISSED_STORED (1ul << 30)

static volatile sig_atomic_t stopping;
static int port;
static uint64_t seq, pages, page_bytes;
static uint32_t crc_table[256];

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "hvtrace-stream: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ HVTRACE_CRC32_POLY : c >> 1;
		crc_table[i] = c;
	}
}

/* Continues a CRC-32 register (not inverted). */
static uint32_t crc_update(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* When the host last wrote to the port: it does every 20 ms while it
 * reads, so a long silence means the host side is gone. */
static struct timespec last_kick;
#define HOST_GONE_S 10

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void write_text(const char *path, const char *text);

/* The host is gone (it has not read for HOST_GONE_S): tracing off, and out. */
static void host_gone(void)
{
	fprintf(stderr, "hvtrace-stream: the host has not read for %d s: tracing off, stopping\n", HOST_GONE_S);
	write_text("/sys/kernel/tracing/tracing_on", "0");
	exit(3);
}

static void write_all(const void *data, size_t n)
{
	const char *p = data;
	int waited_s = 0;
	while (n) {
		/* A port nobody reads fills up and blocks: wait in steps, and
		 * give up when the host stays away. */
		struct pollfd pf = { .fd = port, .events = POLLOUT };
		int r = poll(&pf, 1, 1000);
		if (r > 0 && !(pf.revents & POLLOUT)) {
			/* POLLHUP: the host closed its end (it answers at once). */
			sleep(1);
			r = 0;
		}
		if (r == 0 && ++waited_s >= HOST_GONE_S)
			host_gone();
		if (r <= 0)
			continue;
		waited_s = 0;
		ssize_t w = write(port, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("writing to the port");
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Reads and drops what the host wrote to the port (its kicks). */
static void drain_kicks(void)
{
	char buf[256];
	struct pollfd p = { .fd = port, .events = POLLIN };
	while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN) && read(port, buf, sizeof(buf)) > 0)
		clock_gettime(CLOCK_MONOTONIC, &last_kick);
}

/* One frame: a header and up to two pieces of payload. */
static void send_frame(uint16_t kind, uint16_t cpu, const void *a, size_t na, const void *b, size_t nb)
{
	struct hvtrace_frame f = {
		.magic = HVTRACE_STREAM_MAGIC,
		.kind = kind,
		.cpu = cpu,
		.seq = seq++,
		.len = (uint32_t)(na + nb),
	};
	uint32_t crc = crc_update(~0u, &f, offsetof(struct hvtrace_frame, crc));
	crc = crc_update(crc, a, na);
	crc = crc_update(crc, b, nb);
	f.crc = ~crc;
	write_all(&f, sizeof(f));
	write_all(a, na);
	write_all(b, nb);
	drain_kicks();
}

/* Sends `data` as the file `name`, in chunks. */
static void send_bytes(const char *name, const char *data, size_t n)
{
	size_t head = strlen(name) + 1;
	size_t room = HVTRACE_FRAME_MAX_PAYLOAD - head;
	do {
		size_t chunk = n < room ? n : room;
		send_frame(HVTRACE_FRAME_FILE, 0, name, head, data, chunk);
		data += chunk;
		n -= chunk;
	} while (n);
}

/* Sends the file at `path` as `name`; a file that cannot be opened is skipped. */
static void send_file(const char *name, const char *path)
{
	static char buf[HVTRACE_FRAME_MAX_PAYLOAD];
	size_t head = strlen(name) + 1;
	size_t room = sizeof(buf) - head;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	for (int first = 1;; first = 0) {
		ssize_t n = read(fd, buf, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(path);
		/* An empty file is still sent: its name says it exists. */
		if (n == 0 && !first)
			break;
		send_frame(HVTRACE_FRAME_FILE, 0, name, head, buf, (size_t)n);
		if (n == 0)
			break;
	}
	close(fd);
}

/* The format files of every event in events/SYSTEM/, or of one EVENT. */
static void send_formats(const char *system, const char *event)
{
	char dir[256], name[512], path[600];
	snprintf(dir, sizeof(dir), TRACEFS "/events/%s", system);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || (event && strcmp(e->d_name, event)))
			continue;
		snprintf(name, sizeof(name), "events/%s/%s/format", system, e->d_name);
		snprintf(path, sizeof(path), TRACEFS "/%s", name);
		if (access(path, R_OK) == 0)
			send_file(name, path);
	}
	closedir(d);
}

/* Formats of the events set_event enables (lines `system:event`). */
static void send_enabled_formats(void)
{
	FILE *f = fopen(TRACEFS "/set_event", "r");
	char line[256];
	if (!f)
		die(TRACEFS "/set_event");
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		line[strcspn(line, "\n")] = 0;
		if (!colon)
			continue;
		*colon = 0;
		send_formats(line, colon + 1);
	}
	fclose(f);
}

/* A page's bytes up to the end of its data (and the stored count of lost events). */
static size_t page_used(const uint8_t *page, size_t n)
{
	uint64_t commit;
	if (n < PAGE_HEADER)
		return n;
	memcpy(&commit, page + 8, sizeof(commit));
	size_t used = PAGE_HEADER + (size_t)(commit & (RB_MISSED_STORED - 1));
	if (commit & RB_MISSED_STORED)
		used += sizeof(unsigned long);
	return used < n ? used : n;
}

/* Sends what each CPU's buffer holds now, at most `max` pages a CPU (a
 * flood refills the buffer as fast as it is read: the stop must still be
 * seen); whether there was any. */
static int send_pages(int *fds, int cpus, uint8_t *page, size_t page_size, int max)
{
	int any = 0;
	for (int cpu = 0; cpu < cpus; cpu++) {
		for (int n = 0; n < max; n++) {
			ssize_t n = read(fds[cpu], page, page_size);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			size_t used = page_used(page, (size_t)n);
			send_frame(HVTRACE_FRAME_PAGE, (uint16_t)cpu, page, used, NULL, 0);
			pages++;
			page_bytes += used;
			any = 1;
		}
	}
	return any;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		die(path);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: hvtrace-stream PORT [INTERVAL_MS]\n");
		return 2;
	}
	long interval_ms = argc > 2 ? atol(argv[2]) : 100;
	if (interval_ms <= 0)
		interval_ms = 100;
	crc_init();
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* A virtio port opens once: one descriptor for both ways. Writes
	 * block (the port is a flow-controlled queue); reads only follow poll. */
	port = open(argv[1], O_RDWR);
	if (port < 0)
		die(argv[1]);

	size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
	int fds[MAX_CPUS], cpus = 0;
	for (; cpus < MAX_CPUS; cpus++) {
		char path[128];
		snprintf(path, sizeof(path), TRACEFS "/per_cpu/cpu%d/trace_pipe_raw", cpus);
		fds[cpus] = open(path, O_RDONLY | O_NONBLOCK);
		if (fds[cpus] < 0)
			break;
	}
	if (cpus == 0)
		die(TRACEFS "/per_cpu/cpu0/trace_pipe_raw");

	char hello[128];
	snprintf(hello, sizeof(hello), "hvtrace-stream %d cpus=%d page_size=%zu\n", HVTRACE_STREAM_VERSION,
		 cpus, page_size);
	send_frame(HVTRACE_FRAME_HELLO, 0, hello, strlen(hello), NULL, 0);
	send_file("events/header_page", TRACEFS "/events/header_page");
	send_file("events/header_event", TRACEFS "/events/header_event");
	send_formats("ftrace", NULL);
	send_enabled_formats();
	send_file("kallsyms", "/proc/kallsyms");
	send_file("printk_formats", TRACEFS "/printk_formats");
	send_file("trace_clock", TRACEFS "/trace_clock");
	struct utsname u;
	if (uname(&u) == 0) {
		char text[sizeof(u) + 8];
		snprintf(text, sizeof(text), "%s %s %s %s %s", u.sysname, u.nodename, u.release, u.version,
			 u.machine);
		send_bytes("uname", text, strlen(text));
	}

	uint8_t *page = malloc(page_size);
	if (!page)
		die("malloc");
	struct timespec nap = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
	clock_gettime(CLOCK_MONOTONIC, &last_kick);
	while (!stopping) {
		if (!send_pages(fds, cpus, page, page_size, 64))
			nanosleep(&nap, NULL);
		drain_kicks();
		/* Nobody reads any more (the host's hv-trace died): stop tracing
		 * rather than trace for nobody. */
		if (since(&last_kick) > HOST_GONE_S)
			host_gone();
	}
	/* Stopped: nothing more is written, so the buffers drain. */
	write_text(TRACEFS "/tracing_on", "0");
	while (send_pages(fds, cpus, page, page_size, 1 << 20))
		;
	send_file("saved_cmdlines", TRACEFS "/saved_cmdlines");
	for (int cpu = 0; cpu < cpus; cpu++) {
		char name[64], path[128];
		snprintf(name, sizeof(name), "per_cpu/cpu%d/stats", cpu);
		snprintf(path, sizeof(path), TRACEFS "/%s", name);
		send_file(name, path);
	}
	char end[160];
	snprintf(end, sizeof(end), "frames=%llu pages=%llu page_bytes=%llu\n", (unsigned long long)seq,
		 (unsigned long long)pages, (unsigned long long)page_bytes);
	send_frame(HVTRACE_FRAME_END, 0, end, strlen(end), NULL, 0);
	return 0;
}
