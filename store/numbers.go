package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/customerd/customerd/strictjson"
)

// PlainNumbers writes every number of a JSON value in plain decimal, as
// PostgreSQL's numeric prints it (1e2 is 100, 1.50e1 is 15.0, -0 is 0), so
// that SQLite keeps and both databases return exactly what the answer
// showed. Everything else is kept byte for byte. A number is refused by
// strictjson.CheckNumber, or when written out it would not fit in limit bytes.
func PlainNumbers(v json.RawMessage, limit int) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var out []byte
	last := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break // the body was checked: io.EOF
		}
		n, ok := tok.(json.Number)
		if !ok {
			continue
		}
		if err := strictjson.CheckNumber(n.String()); err != nil {
			return nil, err
		}
		plain, ok := plainNumber(n.String(), limit)
		if !ok {
			return nil, fmt.Errorf("must be at most %d bytes of JSON, numbers written out", limit)
		}
		if plain == n.String() {
			continue
		}
		end := int(dec.InputOffset())
		out = append(append(out, v[last:end-len(n)]...), plain...)
		last = end
	}
	if out == nil {
		return v, nil
	}
	return append(out, v[last:]...), nil
}

// plainNumber writes a JSON number literal without exponent, keeping the digits
// after the point that it has (its scale, as numeric keeps it); false when that
// takes more than limit bytes. The length is known before anything is built,
// so 0e-999999999 costs nothing.
func plainNumber(lit string, limit int) (string, bool) {
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	m, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		m = lit[:i]
		e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil { // more digits than an int: as far as any limit goes
			e = math.MaxInt32
			if lit[i+1] == '-' {
				e = math.MinInt32
			}
		}
		exp = e
	}
	whole, frac, _ := strings.Cut(m, ".")
	digits := whole + frac
	point := len(whole) + exp // where the point falls in digits
	scale := max(0, len(frac)-exp)
	first := strings.IndexFunc(digits, func(r rune) bool { return r != '0' })
	wholeLen := 1
	if first >= 0 && point-first > 1 {
		wholeLen = point - first
	}
	if scale > limit || wholeLen > limit || wholeLen+scale+2 > limit {
		return "", false
	}
	var b strings.Builder
	if neg && first >= 0 {
		b.WriteByte('-')
	}
	if first < 0 || point-first <= 0 {
		b.WriteByte('0')
	} else {
		b.WriteString(digits[first:min(point, len(digits))])
		b.WriteString(strings.Repeat("0", max(0, point-len(digits))))
	}
	if scale > 0 {
		b.WriteByte('.')
		fraction := strings.Repeat("0", max(0, -point)) + digits[min(max(point, 0), len(digits)):]
		b.WriteString(fraction[:min(scale, len(fraction))])
		b.WriteString(strings.Repeat("0", scale-min(scale, len(fraction))))
	}
	return b.String(), true
}
