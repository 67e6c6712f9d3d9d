/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pci-sysfs.h — a PCI function driven from user space through sysfs, for the hostile test
 * guest (ptnet-hostile.c): finding a 1b36 function by device id, enabling it, its config space
 * (pread/pwrite), its BARs (resourceN mmap), I/O-port accesses of any width (after ioperm),
 * and the physical address of a locked page (/proc/self/pagemap). Include ptnet-tool.h first.
 */
#ifndef PCI_SYSFS_H
#define PCI_SYSFS_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <unistd.h>

struct func {
	char path[300];
	int cfg;
	uint64_t bar[6], bar_len[6];
};

static inline int find(const char *want, struct func *f)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	char p[300], buf[64];
	int found = 0;

	if (!d)
		die("/sys/bus/pci/devices");
	while ((e = readdir(d)) && !found) {
		FILE *fp;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		fp = fopen(p, "r");
		if (!fp || !fgets(buf, sizeof(buf), fp)) {
			if (fp)
				fclose(fp);
			continue;
		}
		fclose(fp);
		if (strncmp(buf, "0x1b36", 6))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/device", e->d_name);
		fp = fopen(p, "r");
		if (fp && fgets(buf, sizeof(buf), fp) && !strncmp(buf, want, 6)) {
			snprintf(f->path, sizeof(f->path), "/sys/bus/pci/devices/%s", e->d_name);
			found = 1;
		}
		if (fp)
			fclose(fp);
	}
	closedir(d);
	return found;
}

static inline void open_func(struct func *f)
{
	char p[340];
	FILE *fp;
	int i;

	snprintf(p, sizeof(p), "%s/driver", f->path);
	if (access(p, F_OK) == 0) {
		printf("PTNET-HOSTILE-ERROR %s is bound to a driver: unbind it first\n", f->path);
		exit(1);
	}
	snprintf(p, sizeof(p), "%s/enable", f->path);
	fp = fopen(p, "w");
	if (!fp || fputs("1", fp) < 0 || fclose(fp))
		die(p);
	snprintf(p, sizeof(p), "%s/config", f->path);
	f->cfg = open(p, O_RDWR);
	if (f->cfg < 0)
		die(p);
	snprintf(p, sizeof(p), "%s/resource", f->path);
	fp = fopen(p, "r");
	if (!fp)
		die(p);
	for (i = 0; i < 6; i++) {
		unsigned long long a, b, fl;

		if (fscanf(fp, "%llx %llx %llx", &a, &b, &fl) != 3)
			break;
		f->bar[i] = a;
		f->bar_len[i] = a ? b - a + 1 : 0;
	}
	fclose(fp);
}

static inline uint32_t cfg_read(struct func *f, int off, int len)
{
	uint32_t v = 0;

	if (pread(f->cfg, &v, len, off) != len)
		die("config read");
	return v;
}

static inline void cfg_write(struct func *f, int off, uint32_t v, int len)
{
	if (pwrite(f->cfg, &v, len, off) != len)
		die("config write");
}

static inline void *map_res(struct func *f, int bar, size_t len)
{
	char p[340];
	int fd;
	void *m;

	snprintf(p, sizeof(p), "%s/resource%d", f->path, bar);
	fd = open(p, O_RDWR | O_SYNC);
	if (fd < 0)
		die(p);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		die(p);
	close(fd);
	return m;
}

static inline uint64_t phys_of(void *va)
{
	uint64_t e;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0 || pread(fd, &e, 8, (uintptr_t)va / 4096 * 8) != 8)
		die("pagemap");
	close(fd);
	if (!(e >> 63) || !(e & ((1ULL << 55) - 1))) {
		errno = EFAULT;
		die("pagemap: page not present or PFN hidden");
	}
	return (e & ((1ULL << 55) - 1)) * 4096;
}

/* Register accesses of any width (the device decodes only aligned 4-byte ones). */
static inline void io_write(uint16_t base, uint32_t off, uint32_t v, int width)
{
	if (width == 1)
		outb(v, base + off);
	else if (width == 2)
		outw(v, base + off);
	else
		outl(v, base + off);
}

static inline uint32_t io_read(uint16_t base, uint32_t off, int width)
{
	if (width == 1)
		return inb(base + off);
	if (width == 2)
		return inw(base + off);
	return inl(base + off);
}

#endif
