package keysrc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// componentDocument is component_keyring_file's JSON (docs/formats.md section 2.2); Percona's
// encrypted component stores the same document encrypted.
type componentDocument struct {
	Version  string `json:"version"`
	Elements []struct {
		User     string `json:"user"`
		DataID   string `json:"data_id"`
		DataType string `json:"data_type"`
		Data     string `json:"data"`
	} `json:"elements"`
}

func parseComponentKeyringFile(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer clear(data) // every key in hex; the parsed keys are all that is kept
	keys, err := ParseComponentKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("component_keyring_file %s: %w", path, err)
	}
	return keys, nil
}

// ParseComponentKeyring decodes the component keyring JSON. An empty document holds no keys.
func ParseComponentKeyring(data []byte) ([]Key, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var doc componentDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid keyring JSON: %w", err)
	}
	if doc.Version != "1.0" {
		return nil, fmt.Errorf("unknown keyring JSON version %q (1.0 expected)", doc.Version)
	}
	keys := make([]Key, 0, len(doc.Elements))
	for _, e := range doc.Elements {
		value, err := hex.DecodeString(e.Data)
		if err != nil {
			return nil, fmt.Errorf("key %q: data is not hex", e.DataID)
		}
		keys = append(keys, Key{ID: e.DataID, Owner: e.User, Type: e.DataType, Value: value})
	}
	return keys, nil
}

// EncodeComponentKeyring writes keys the way component_keyring_file does (upper-case hex). It
// exists for tests and the demo.
func EncodeComponentKeyring(keys []Key) []byte {
	type element struct {
		User      string `json:"user"`
		DataID    string `json:"data_id"`
		DataType  string `json:"data_type"`
		Data      string `json:"data"`
		Extension []any  `json:"extension"`
	}
	doc := struct {
		Version  string    `json:"version"`
		Elements []element `json:"elements"`
	}{Version: "1.0", Elements: []element{}}
	for _, k := range keys {
		doc.Elements = append(doc.Elements, element{k.Owner, k.ID, k.Type,
			fmt.Sprintf("%X", k.Value), []any{}})
	}
	out, _ := json.Marshal(doc)
	return out
}
