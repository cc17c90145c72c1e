package fs

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// Read-ahead buffers come in pairs from one aligned huge-page-sized block that the kernel
// may back with a huge page.
func TestAheadBuffersShareAHugePage(t *testing.T) {
	budget := bufferBudget{limit: 2}
	first, second := budget.take(), budget.take()
	start := uintptr(unsafe.Pointer(&first[0]))
	if start%hugePageSize != 0 {
		t.Fatalf("first buffer at %#x, not aligned to %d", start, hugePageSize)
	}
	if uintptr(unsafe.Pointer(&second[0])) != start+aheadSize || len(second) != aheadSize || cap(first) != aheadSize {
		t.Fatalf("second buffer does not follow the first within the block")
	}
	thp, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if len(thp) == 0 || strings.Contains(string(thp), "[never]") {
		t.Skip("transparent huge pages are off here")
	}
	if eligible := thpEligible(t, start); !eligible {
		t.Fatalf("the block at %#x is not eligible for transparent huge pages", start)
	}
}

// thpEligible reads /proc/self/smaps for the mapping that holds addr.
func thpEligible(t *testing.T, addr uintptr) bool {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	inside := false
	for _, line := range strings.Split(string(smaps), "\n") {
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			inside = lo <= addr && addr < hi
		}
		if inside && strings.HasPrefix(line, "THPeligible:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "THPeligible:")) == "1"
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return false
}
