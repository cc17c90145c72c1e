package events

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/text/encoding/charmap"
)

// column is what the table map says of one column: enough to write its values exactly.
type column struct {
	name    string   // from binlog_row_metadata=FULL, else "@1", "@2", ... as mysqlbinlog names them
	kind    byte     // the real MySQL type
	charset charset  // of a character column, when the metadata gives it
	names   []string // of an ENUM's or SET's members, when the metadata gives them
}

type charset int

const (
	charsetUnknown charset = iota // no metadata: UTF-8 if it is valid, else binary
	charsetUTF8
	charsetLatin1
	charsetBinary
)

// columnsOf reads a table map's columns and metadata.
func columnsOf(t *replication.TableMapEvent) []column {
	cols := make([]column, len(t.ColumnType))
	names := t.ColumnNameString()
	collations := t.CollationMap()
	enumSetCollations := t.EnumSetCollationMap()
	enums, sets := t.EnumStrValueMap(), t.SetStrValueMap()
	for i := range cols {
		c := &cols[i]
		c.name = "@" + strconv.Itoa(i+1)
		if i < len(names) && names[i] != "" {
			c.name = names[i]
		}
		c.kind = t.ColumnType[i]
		if t.IsEnumColumn(i) {
			c.kind, c.names = mysql.MYSQL_TYPE_ENUM, enums[i]
		} else if t.IsSetColumn(i) {
			c.kind, c.names = mysql.MYSQL_TYPE_SET, sets[i]
		}
		if id, ok := collations[i]; ok {
			c.charset = charsetOf(id)
		} else if id, ok := enumSetCollations[i]; ok {
			c.charset = charsetOf(id)
		}
	}
	return cols
}

// charsetOf maps the collation IDs of the character sets whose bytes need more than a UTF-8
// check. Others are taken as UTF-8 when valid and written as binary when not.
func charsetOf(collation uint64) charset {
	switch collation {
	case 63:
		return charsetBinary
	case 5, 8, 15, 31, 47, 48, 49, 94:
		return charsetLatin1 // MySQL's latin1 is Windows-1252
	case 33, 45, 46, 76, 83, 255, 305, 306, 307, 308:
		return charsetUTF8
	}
	if collation >= 192 && collation <= 247 || collation >= 255 && collation <= 323 {
		return charsetUTF8 // utf8mb3 and utf8mb4 collations
	}
	return charsetUnknown
}

// appendValue appends a column value as JSON: numbers as numbers, DECIMAL and temporal values
// as the server's text, text as UTF-8, bytes that are not text as {"base64": ...}, ENUM and SET
// by name where the metadata names them, JSON as JSON, NULL as null.
func (c *column) appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return c.appendInt(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float32:
		return appendFloat(b, float64(v), 32)
	case float64:
		return appendFloat(b, v, 64)
	case string:
		return c.appendBytes(b, v)
	case []byte:
		return c.appendBytes(b, string(v))
	}
	// A type go-mysql gains later: its text form, never silently nothing.
	return appendString(b, strings.TrimSpace(toText(v)))
}

// appendInt writes ENUM and SET members by name when the metadata has them.
func (c *column) appendInt(b []byte, v int64) []byte {
	switch {
	case c.kind == mysql.MYSQL_TYPE_ENUM && v >= 1 && int(v) <= len(c.names):
		return appendString(b, c.names[v-1])
	case c.kind == mysql.MYSQL_TYPE_ENUM && v == 0 && c.names != nil:
		return appendString(b, "") // the error value ''
	case c.kind == mysql.MYSQL_TYPE_SET && c.names != nil:
		var members []string
		for i, name := range c.names {
			if v&(1<<i) != 0 {
				members = append(members, name)
			}
		}
		return appendString(b, strings.Join(members, ","))
	}
	return strconv.AppendInt(b, v, 10)
}

// appendBytes writes a string or byte value by its column's kind and character set.
func (c *column) appendBytes(b []byte, s string) []byte {
	switch {
	case c.kind == mysql.MYSQL_TYPE_JSON:
		if s == "" {
			return append(b, "null"...) // an empty document, as MySQL reads it
		}
		if json.Valid([]byte(s)) {
			return append(b, s...)
		}
	case c.kind == mysql.MYSQL_TYPE_GEOMETRY || c.charset == charsetBinary:
		return appendBinary(b, []byte(s))
	case c.charset == charsetLatin1:
		decoded, err := charmap.Windows1252.NewDecoder().String(s)
		if err == nil {
			return appendString(b, decoded)
		}
	}
	if utf8.ValidString(s) {
		return appendString(b, s)
	}
	return appendBinary(b, []byte(s))
}

// appendText writes statement text: UTF-8 when valid, else binary.
func appendText(b []byte, text []byte) []byte {
	if utf8.Valid(text) {
		return appendString(b, string(text))
	}
	return appendBinary(b, text)
}

func toText(v any) string { return fmt.Sprint(v) }

// appendFloat writes a float as a number; the values JSON has no number for (which a server
// never stores, so only damage brings them) as the strings "NaN", "Infinity", "-Infinity".
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}
