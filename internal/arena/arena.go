package arena

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const hugePageSize = 2 << 20

// Arena is a reserved shared-memory file and the store's own mapping of it.
type Arena struct {
	File *os.File
	Size uint64 // bytes mapped (capacity rounded up to the page size)
	Mem  []byte
}

// Options choose where the arena lives.
type Options struct {
	Dir       string // directory for the backing file; "" means a memfd
	HugePages bool   // Dir must be a hugetlbfs mount, or Dir "" for MFD_HUGETLB
}

// Create reserves capacity bytes of shared memory and maps it.
func Create(capacity uint64, opt Options) (*Arena, error) {
	if capacity == 0 {
		return nil, fmt.Errorf("arena capacity must be > 0")
	}
	page := uint64(os.Getpagesize())
	if opt.HugePages {
		page = hugePageSize
	}
	size := (capacity + page - 1) / page * page
	f, err := openBacking(opt)
	if err != nil {
		return nil, err
	}
	if err := reserve(f, size, opt); err != nil {
		f.Close()
		return nil, err
	}
	mem, err := Map(f, size, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Arena{File: f, Size: size, Mem: mem}, nil
}

func openBacking(opt Options) (*os.File, error) {
	if opt.Dir == "" {
		flags := unix.MFD_CLOEXEC
		if opt.HugePages {
			flags |= unix.MFD_HUGETLB
		}
		fd, err := unix.MemfdCreate("plasma-arena", flags)
		if err != nil {
			return nil, fmt.Errorf("create memfd arena: %w", err)
		}
		return os.NewFile(uintptr(fd), "memfd:plasma-arena"), nil
	}
	f, err := os.CreateTemp(opt.Dir, "plasma-arena-*")
	if err != nil {
		return nil, fmt.Errorf("create arena file in %s: %w", opt.Dir, err)
	}
	// Unlinked at once: the memory lives as long as a mapping or descriptor
	// does, and nothing is left in the directory if the store is killed.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlink arena file %s: %w", f.Name(), err)
	}
	return f, nil
}

func reserve(f *os.File, size uint64, opt Options) error {
	if err := f.Truncate(int64(size)); err != nil {
		return fmt.Errorf("size arena to %d bytes: %w", size, err)
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, int64(size))
	if err == nil || err == unix.EOPNOTSUPP {
		return nil
	}
	where := "memfd"
	if dir := opt.Dir; dir != "" {
		where = dir
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			where = fmt.Sprintf("%s (%d bytes free)", dir, st.Bavail*uint64(st.Bsize))
		}
	}
	if opt.HugePages {
		where += " backed by huge pages (reserve enough 2 MiB pages first: sysctl vm.nr_hugepages=N)"
	}
	return fmt.Errorf("cannot reserve %d bytes of shared memory in %s: %w", size, where, err)
}

// Map maps size bytes of f shared, writable or read-only.
func Map(f *os.File, size uint64, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map arena (%d bytes): %w", size, err)
	}
	return mem, nil
}

// Close unmaps the store's mapping and closes the descriptor.
func (a *Arena) Close() error {
	err := unix.Munmap(a.Mem)
	if cerr := a.File.Close(); err == nil {
		err = cerr
	}
	return err
}
