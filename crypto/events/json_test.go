package events

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzAppendString: the eight-bytes-at-a-time scan finds the first byte that needs care where
// a byte loop does, and every string reads back through encoding/json as itself.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain text here", "tab\there", `quote"s and \ slash`, "\x7f\x80\xff", "é&amp;ü", "12345678\x1f"} {
		f.Add(s, byte('&'))
	}
	f.Fuzz(func(t *testing.T, s string, avoid byte) {
		want := 0
		for want < len(s) {
			c := s[want]
			if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || avoid != 0 && c == avoid {
				break
			}
			want++
		}
		if got := plainPrefix(s, avoid); got != want {
			t.Fatalf("plainPrefix(%q, %q) = %d, want %d", s, avoid, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("appendString(%q) is not JSON: %v", s, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("appendString(%q) reads back as %q", s, back)
		}
	})
}
