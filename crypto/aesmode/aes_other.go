//go:build !amd64 || purego

package aesmode

// vectorAESes is empty: vector AES is written for amd64 only; crypto/cipher serves the rest.
var vectorAESes []*vectorAES
