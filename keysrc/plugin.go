package keysrc

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The keyring_file plugin's data file (MySQL 5.7.11 to 8.3): a version line, records written
// with the writer's own word width and byte order, "EOF", and (version 2.0) a SHA-256 digest
// of the records. Described in docs/formats.md section 2.1.
const (
	pluginHeaderPrefix = "Keyring file version:"
	pluginHeaderV1     = pluginHeaderPrefix + "1.0"
	pluginHeaderV2     = pluginHeaderPrefix + "2.0"
	pluginEOF          = "EOF"
	backupSuffix       = ".backup"
	// obfuscation is XORed over every key value the plugin stores.
	obfuscation = "*305=Ljt0*!@$Hnm(*-9-w;:"
)

// wordLayout is one of the ways a writer may have stored the record length fields.
type wordLayout struct {
	name  string
	width int
	order binary.ByteOrder
}

// pluginLayouts are tried in the order the server tries them.
var pluginLayouts = []wordLayout{
	{"LE64", 8, binary.LittleEndian},
	{"LE32", 4, binary.LittleEndian},
	{"BE64", 8, binary.BigEndian},
	{"BE32", 4, binary.BigEndian},
}

func (l wordLayout) word(b []byte) uint64 {
	if l.width == 8 {
		return l.order.Uint64(b)
	}
	return uint64(l.order.Uint32(b))
}

// parsePluginKeyringWithBackup prefers a valid "<file>.backup", which the plugin leaves behind
// when a write was interrupted and restores from at start-up.
func parsePluginKeyringWithBackup(path string) ([]Key, error) {
	if backup, err := os.ReadFile(path + backupSuffix); err == nil {
		keys, err := ParsePluginKeyring(backup)
		clear(backup)
		if err == nil {
			return keys, nil
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer clear(data) // obfuscated key values; the parsed keys are all that is kept
	keys, err := ParsePluginKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring_file %s: %w", path, err)
	}
	return keys, nil
}

// ParsePluginKeyring decodes a keyring_file plugin data file. An empty file holds no keys.
func ParsePluginKeyring(data []byte) ([]Key, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if len(data) < len(pluginHeaderV2) || !bytes.HasPrefix(data, []byte(pluginHeaderPrefix)) {
		return nil, errors.New("not a keyring_file data file (no \"Keyring file version:\" header)")
	}
	version := string(data[:len(pluginHeaderV2)])
	body := data[len(pluginHeaderV2):]
	switch version {
	case pluginHeaderV1:
	case pluginHeaderV2:
		if len(body) < len(pluginEOF)+sha256.Size {
			return nil, errors.New("file too short for its EOF tag and digest: truncated")
		}
		digest := body[len(body)-sha256.Size:]
		body = body[:len(body)-sha256.Size]
		records := body[:len(body)-len(pluginEOF)]
		if sum := sha256.Sum256(records); !bytes.Equal(sum[:], digest) {
			return nil, errors.New("SHA-256 digest does not match the records: the file is corrupt or truncated; if the server left a .backup beside it, that copy may be intact")
		}
	default:
		return nil, fmt.Errorf("unknown keyring file version %q", strings.TrimPrefix(version, pluginHeaderPrefix))
	}
	if !bytes.HasSuffix(body, []byte(pluginEOF)) {
		return nil, errors.New("no EOF tag: truncated")
	}
	records := body[:len(body)-len(pluginEOF)]
	for _, layout := range pluginLayouts {
		if keys, ok := walkPluginRecords(records, layout); ok {
			return keys, nil
		}
	}
	return nil, errors.New("records do not fit any word layout (LE64, LE32, BE64, BE32): a record is truncated or corrupt")
}

// walkPluginRecords decodes records with one layout; ok is false unless the walk ends exactly
// at the end, which is how the server recognises the writer's layout.
func walkPluginRecords(records []byte, l wordLayout) (keys []Key, ok bool) {
	head := 5 * l.width
	for pos := 0; pos < len(records); {
		if len(records)-pos < head {
			return nil, false
		}
		var field [5]uint64
		for i := range field {
			field[i] = l.word(records[pos+i*l.width:])
		}
		recLen := field[0]
		sum := uint64(head) + field[1] + field[2] + field[3] + field[4]
		if recLen%uint64(l.width) != 0 || recLen < sum || recLen > uint64(len(records)-pos) ||
			field[1] > recLen || field[2] > recLen || field[3] > recLen || field[4] > recLen {
			return nil, false
		}
		rest := records[pos+head : pos+int(recLen)]
		take := func(n uint64) []byte { b := rest[:n]; rest = rest[n:]; return b }
		k := Key{ID: string(take(field[1])), Type: string(take(field[2])), Owner: string(take(field[3]))}
		k.Value = deobfuscate(take(field[4]))
		keys = append(keys, k)
		pos += int(recLen)
	}
	return keys, true
}

func deobfuscate(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ obfuscation[i%len(obfuscation)]
	}
	return out
}

// EncodePluginKeyring writes keys in the plugin's version 2.0 format with a given layout
// ("LE64", "LE32", "BE64", "BE32"). It exists for tests and the demo.
func EncodePluginKeyring(keys []Key, layoutName string, version2 bool) ([]byte, error) {
	var l *wordLayout
	for i := range pluginLayouts {
		if pluginLayouts[i].name == layoutName {
			l = &pluginLayouts[i]
		}
	}
	if l == nil {
		return nil, fmt.Errorf("unknown layout %q", layoutName)
	}
	var records []byte
	for _, k := range keys {
		lens := []int{len(k.ID), len(k.Type), len(k.Owner), len(k.Value)}
		size := 5 * l.width
		for _, n := range lens {
			size += n
		}
		size += (l.width - size%l.width) % l.width
		rec := make([]byte, 0, size)
		for _, n := range append([]int{size}, lens...) {
			w := make([]byte, l.width)
			if l.width == 8 {
				l.order.PutUint64(w, uint64(n))
			} else {
				l.order.PutUint32(w, uint32(n))
			}
			rec = append(rec, w...)
		}
		rec = append(rec, k.ID...)
		rec = append(rec, k.Type...)
		rec = append(rec, k.Owner...)
		rec = append(rec, deobfuscate(k.Value)...)
		rec = append(rec, make([]byte, size-len(rec))...)
		records = append(records, rec...)
	}
	header := pluginHeaderV1
	if version2 {
		header = pluginHeaderV2
	}
	out := append([]byte(header), records...)
	out = append(out, pluginEOF...)
	if version2 {
		sum := sha256.Sum256(records)
		out = append(out, sum[:]...)
	}
	return out, nil
}
