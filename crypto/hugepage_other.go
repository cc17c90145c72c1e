//go:build !linux

package crypto

func allocateHuge(n int) []byte { return make([]byte, n) }
