package source

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Views serve reads of every size they take, anywhere in the file, with the file's bytes;
// they move with the reads, and reads they cannot take are left to pread.
func TestViewsViews(t *testing.T) {
	content := make([]byte, 9<<20+777)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := NewViews(f, int64(len(content)))
	defer m.Close()
	size := int64(len(content))
	for _, n := range []int{ViewMinimum, 1 << 20, 2 << 20} {
		for off := int64(0); off+int64(n) <= size; off += int64(n)/3 + 511 {
			var got []byte
			mapped, err := m.Read(off, n, func(b []byte) { got = append(got, b...) })
			if !mapped || err != nil {
				t.Fatalf("read of %d at %d: mapped %v, %v", n, off, mapped, err)
			}
			if !bytes.Equal(got, content[off:off+int64(n)]) {
				t.Fatalf("read of %d at %d: bytes differ from the file's", n, off)
			}
		}
	}
	for _, r := range []struct{ off, n int64 }{{0, ViewMinimum - 1}, {size - ViewMinimum + 1, ViewMinimum}, {1, 2<<20 + HugePageSize}} {
		if mapped, _ := m.Read(r.off, int(r.n), func([]byte) { t.Fatal("called") }); mapped {
			t.Errorf("read of %d at %d was mapped; it is too small, too large or past the end", r.n, r.off)
		}
	}

	// Every view busy: the next read is left to pread, then a view moves again once free.
	m.Read(0, ViewMinimum, func([]byte) {
		m.Read(8<<20, ViewMinimum, func([]byte) {
			if mapped, _ := m.Read(5<<20, ViewMinimum, func([]byte) {}); mapped {
				t.Error("a third read was mapped while both views were in use")
			}
		})
	})
	if mapped, _ := m.Read(5<<20, ViewMinimum, func([]byte) {}); !mapped {
		t.Error("a read was not mapped though a view was free")
	}

	if NewViews(bytes.NewReader(content), size) != nil {
		t.Error("views of something that is not a file")
	}
}

// A file cut short under a view faults when read there; the fault is reported as ErrShrank.
func TestViewsShrunk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := NewViews(f, 4<<20)
	defer m.Close()
	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	sum := 0
	mapped, err := m.Read(2<<20, 1<<20, func(b []byte) {
		for _, c := range b {
			sum += int(c)
		}
	})
	if !mapped || !errors.Is(err, ErrShrank) {
		t.Fatalf("read past the cut: mapped %v, %v; want ErrShrank", mapped, err)
	}
	if mapped, err := m.Read(0, 1<<20, func([]byte) {}); !mapped || err != nil {
		t.Fatalf("read before the cut: mapped %v, %v", mapped, err)
	}
}
