// Package postcode checks the format of postal codes and tells which city and
// region a French postcode belongs to, so that account addresses can be
// validated and completed.
//
// The French data is fr.tsv, embedded in the binary: one line per postcode
// (metropolitan France, Corsica and the overseas départements, plus
// Saint-Pierre-et-Miquelon), with the city and the region. It is generated,
// never edited by hand: `make postcodes` runs scripts/postcodes/convert.mjs on
// the npm package codes-postaux, pinned in scripts/postcodes/package-lock.json,
// and writes the same bytes again for the same package version. codes-postaux
// is built from INSEE's Code Officiel Géographique and the DGFiP's FIMOCT file;
// convert.mjs explains how one city is chosen when a postcode covers several
// communes.
package postcode

import (
	_ "embed"
	"regexp"
	"strings"
	"sync"
)

// Place is what a postcode tells about where it is.
type Place struct{ City, Region string }

//go:embed fr.tsv
var frTSV string

// frPlaces parses fr.tsv once, on first use. Keys are the postcodes as
// numbers; the strings in the values point into the embedded text, so parsing
// copies no names.
var frPlaces = sync.OnceValue(func() map[uint32]Place {
	places := make(map[uint32]Place, strings.Count(frTSV, "\n"))
	for line := range strings.Lines(frTSV) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || line[0] == '#' {
			continue
		}
		code, rest, ok1 := strings.Cut(line, "\t")
		city, region, ok2 := strings.Cut(rest, "\t")
		key, ok3 := frKey(code)
		if !ok1 || !ok2 || !ok3 || city == "" || region == "" || strings.Contains(region, "\t") {
			panic("postcode: malformed line in embedded fr.tsv: " + line)
		}
		places[key] = Place{City: city, Region: region}
	}
	return places
})

// frKey turns a 5-digit postcode into its map key.
func frKey(postcode string) (uint32, bool) {
	if len(postcode) != 5 {
		return 0, false
	}
	var n uint32
	for i := range 5 {
		c := postcode[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
	}
	return n, true
}

// covered maps the countries that Lookup knows to the postcode prefix they
// must have in the French data: France itself, and the overseas départements
// and collectivities that have their own ISO 3166-1 code but French
// postcodes.
var covered = map[string]string{
	"FR": "",
	"GP": "971", // Guadeloupe
	"MQ": "972", // Martinique
	"GF": "973", // Guyane
	"RE": "974", // La Réunion
	"PM": "975", // Saint-Pierre-et-Miquelon
	"YT": "976", // Mayotte
}

// Lookup returns the place of a postcode in a country (ISO 3166-1 alpha-2,
// upper case), and false when the dataset has no entry. Only France is
// covered: "FR", and the overseas départements under their own codes ("RE"
// with 974xx, "GP", "MQ", "GF", "YT", and "PM" for Saint-Pierre-et-Miquelon).
// The country is matched regardless of case; the postcode must be exactly five
// digits, without spaces.
func Lookup(country, postcode string) (Place, bool) {
	prefix, ok := covered[strings.ToUpper(country)]
	if !ok || !strings.HasPrefix(postcode, prefix) {
		return Place{}, false
	}
	key, ok := frKey(postcode)
	if !ok {
		return Place{}, false
	}
	p, ok := frPlaces()[key]
	return p, ok
}

// formats holds, per country, the pattern its postcodes follow. Letters match
// in either case.
var formats = sync.OnceValue(func() map[string]*regexp.Regexp {
	patterns := map[string]string{
		"FR": `[0-9]{5}`,
		"MC": `980[0-9]{2}`,
		"BE": `[1-9][0-9]{3}`,
		"CH": `[1-9][0-9]{3}`,
		"LU": `(?:L-)?[0-9]{4}`,
		"DE": `(?:0[1-9]|[1-9][0-9])[0-9]{3}`,
		"ES": `(?:0[1-9]|[1-4][0-9]|5[0-2])[0-9]{3}`,
		"IT": `[0-9]{5}`,
		"NL": `[1-9][0-9]{3} ?(?:[A-RT-Z][A-Z]|S[BCE-RT-Z])`, // no SA, SD, SS
		"PT": `[1-9][0-9]{3}-[0-9]{3}`,
		"GB": `GIR ?0AA|[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY]) ?[0-9][ABD-HJLNP-UW-Z]{2}`,
		"US": `[0-9]{5}(?:-[0-9]{4})?`,
		"CA": `[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]`,
		"JP": `[0-9]{3}-[0-9]{4}`,
		"GP": `971[0-9]{2}`,
		"MQ": `972[0-9]{2}`,
		"GF": `973[0-9]{2}`,
		"RE": `974[0-9]{2}`,
		"PM": `97500`,
		"YT": `976[0-9]{2}`,
		"BL": `97133`,
		"MF": `97150`,
	}
	res := make(map[string]*regexp.Regexp, len(patterns))
	for country, p := range patterns {
		res[country] = regexp.MustCompile(`(?i)^(?:` + p + `)$`)
	}
	return res
})

// Valid reports whether postcode has the format of the country's postcodes;
// countries without a known format accept any 1–12 character
// alphanumeric/space/hyphen value (with at least one letter or digit). It
// checks the format only: a French code that follows the format but is not in
// the dataset is valid, though Lookup finds nothing for it. The country is
// matched regardless of case. Where the format is known, leading or trailing
// spaces make a postcode invalid: trim input first.
func Valid(country, postcode string) bool {
	if re, ok := formats()[strings.ToUpper(country)]; ok {
		return re.MatchString(postcode)
	}
	if len(postcode) == 0 || len(postcode) > 12 {
		return false
	}
	alnum := false
	for i := range len(postcode) {
		switch c := postcode[i]; {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			alnum = true
		case c == ' ', c == '-':
		default:
			return false
		}
	}
	return alnum
}
