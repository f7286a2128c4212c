package postcode

import (
	"fmt"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name              string
		country, postcode string
		want              Place
		found             bool
	}{
		{"Paris 1er resolves to Paris, Île-de-France", "FR", "75001", Place{"Paris", "Île-de-France"}, true},
		{"Paris 16e second code resolves to Paris", "FR", "75116", Place{"Paris", "Île-de-France"}, true},
		{"Marseille 1er resolves to Marseille, Provence-Alpes-Côte d'Azur", "FR", "13001", Place{"Marseille", "Provence-Alpes-Côte d'Azur"}, true},
		{"Lyon 1er resolves to Lyon, Auvergne-Rhône-Alpes", "FR", "69001", Place{"Lyon", "Auvergne-Rhône-Alpes"}, true},
		{"Ajaccio resolves to Corse", "FR", "20000", Place{"Ajaccio", "Corse"}, true},
		{"Bastia (2B) resolves to Corse", "FR", "20200", Place{"Bastia", "Corse"}, true},
		{"Saint-Denis resolves to La Réunion", "FR", "97400", Place{"Saint-Denis", "La Réunion"}, true},
		{"La Réunion under its own country code", "RE", "97400", Place{"Saint-Denis", "La Réunion"}, true},
		{"Guadeloupe under its own country code", "GP", "97110", Place{"Pointe-à-Pitre", "Guadeloupe"}, true},
		{"Cayenne resolves to Guyane", "FR", "97300", Place{"Cayenne", "Guyane"}, true},
		{"Fort-de-France resolves to Martinique", "MQ", "97200", Place{"Fort-de-France", "Martinique"}, true},
		{"Dzaoudzi resolves to Mayotte", "YT", "97615", Place{"Dzaoudzi", "Mayotte"}, true},
		{"shared code with one label per commune resolves to the alphabetically first", "FR", "01090", Place{"Francheleins", "Auvergne-Rhône-Alpes"}, true},
		{"label spelt with or without hyphen counts once", "FR", "42500", Place{"Le Chambon-Feugerolles", "Auvergne-Rhône-Alpes"}, true},
		{"lower-case country is accepted", "fr", "75001", Place{"Paris", "Île-de-France"}, true},
		{"unknown French code finds nothing", "FR", "00000", Place{}, false},
		{"unassigned French code finds nothing", "FR", "75099", Place{}, false},
		{"overseas code under the wrong overseas country finds nothing", "GP", "97400", Place{}, false},
		{"metropolitan code under an overseas country finds nothing", "RE", "75001", Place{}, false},
		{"another country finds nothing", "DE", "10115", Place{}, false},
		{"Monaco is not in the dataset", "MC", "98000", Place{}, false},
		{"empty country finds nothing", "", "75001", Place{}, false},
		{"four digits find nothing", "FR", "7500", Place{}, false},
		{"six digits find nothing", "FR", "750011", Place{}, false},
		{"spaces are not trimmed", "FR", " 75001", Place{}, false},
		{"letters find nothing", "FR", "7500A", Place{}, false},
		{"empty postcode finds nothing", "FR", "", Place{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := Lookup(tt.country, tt.postcode)
			if got != tt.want || found != tt.found {
				t.Errorf("Lookup(%q, %q) = %+v, %v; want %+v, %v", tt.country, tt.postcode, got, found, tt.want, tt.found)
			}
		})
	}
}

func TestDatasetHasMoreThan6000Postcodes(t *testing.T) {
	if n := len(frPlaces()); n <= 6000 {
		t.Fatalf("fr.tsv has %d postcodes, want more than 6000", n)
	}
}

func TestDatasetRegionsAreTheFrenchRegions(t *testing.T) {
	want := map[string]bool{
		"Auvergne-Rhône-Alpes": true, "Bourgogne-Franche-Comté": true, "Bretagne": true,
		"Centre-Val de Loire": true, "Corse": true, "Grand Est": true, "Hauts-de-France": true,
		"Île-de-France": true, "Normandie": true, "Nouvelle-Aquitaine": true, "Occitanie": true,
		"Pays de la Loire": true, "Provence-Alpes-Côte d'Azur": true, "Guadeloupe": true,
		"Martinique": true, "Guyane": true, "La Réunion": true, "Mayotte": true,
		"Saint-Pierre-et-Miquelon": true, // an overseas collectivity, not a region
	}
	seen := map[string]bool{}
	for key, p := range frPlaces() {
		if !want[p.Region] {
			t.Errorf("postcode %05d has region %q, not a French region", key, p.Region)
		}
		if strings.TrimSpace(p.City) != p.City || p.City == strings.ToUpper(p.City) {
			t.Errorf("postcode %05d has city %q, want a trimmed, properly cased name", key, p.City)
		}
		seen[p.Region] = true
	}
	for r := range want {
		if !seen[r] {
			t.Errorf("no postcode in region %q", r)
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name              string
		country, postcode string
		want              bool
	}{
		{"FR five digits", "FR", "75001", true},
		{"FR code absent from the dataset still has the format", "FR", "75099", true},
		{"FR overseas code", "FR", "97400", true},
		{"FR four digits", "FR", "7500", false},
		{"FR six digits", "FR", "750011", false},
		{"FR with a space", "FR", "75 001", false},
		{"FR with a letter", "FR", "2A000", false},
		{"FR surrounding spaces", "FR", " 75001 ", false},
		{"FR lower-case country", "fr", "75001", true},

		{"MC 980xx", "MC", "98000", true},
		{"MC outside 980xx", "MC", "06000", false},

		{"BE four digits", "BE", "1000", true},
		{"BE leading zero", "BE", "0999", false},
		{"BE five digits", "BE", "10000", false},

		{"CH four digits", "CH", "8001", true},
		{"CH three digits", "CH", "800", false},

		{"LU four digits", "LU", "1009", true},
		{"LU with L- prefix", "LU", "L-1009", true},
		{"LU five digits", "LU", "10090", false},

		{"DE five digits", "DE", "10115", true},
		{"DE leading zero", "DE", "01067", true},
		{"DE 00xxx does not exist", "DE", "00123", false},
		{"DE four digits", "DE", "1011", false},

		{"ES Madrid", "ES", "28013", true},
		{"ES Melilla province 52", "ES", "52001", true},
		{"ES province 53 does not exist", "ES", "53001", false},
		{"ES four digits", "ES", "2801", false},

		{"IT five digits", "IT", "00184", true},
		{"IT with a letter", "IT", "0018A", false},

		{"NL with space", "NL", "1012 JS", true},
		{"NL without space", "NL", "1012JS", true},
		{"NL lower-case letters", "NL", "1012 js", true},
		{"NL leading zero", "NL", "0123 AB", false},
		{"NL forbidden letters SS", "NL", "1012 SS", false},
		{"NL one letter", "NL", "1012 J", false},
		{"NL two spaces", "NL", "1012  JS", false},

		{"PT NNNN-NNN", "PT", "1000-001", true},
		{"PT without hyphen", "PT", "1000001", false},
		{"PT four digits only", "PT", "1000", false},

		{"GB SW1A 1AA", "GB", "SW1A 1AA", true},
		{"GB EC1A 1BB", "GB", "EC1A 1BB", true},
		{"GB W1A 0AX", "GB", "W1A 0AX", true},
		{"GB M1 1AE", "GB", "M1 1AE", true},
		{"GB B33 8TH", "GB", "B33 8TH", true},
		{"GB DN55 1PT without space", "GB", "DN551PT", true},
		{"GB GIR 0AA", "GB", "GIR 0AA", true},
		{"GB lower case", "GB", "sw1a 1aa", true},
		{"GB starts with a digit", "GB", "1W1 1AA", false},
		{"GB inward part has a C", "GB", "SW1A 1CA", false},
		{"GB outward part only", "GB", "SW1A", false},
		{"GB US ZIP", "GB", "10001", false},

		{"US ZIP", "US", "10001", true},
		{"US ZIP+4", "US", "10001-1234", true},
		{"US ZIP+4 without hyphen", "US", "100011234", false},
		{"US four digits", "US", "1000", false},

		{"CA with space", "CA", "K1A 0B1", true},
		{"CA without space", "CA", "K1A0B1", true},
		{"CA starts with D", "CA", "D1A 0B1", false},
		{"CA digit and letter swapped", "CA", "1KA 0B1", false},

		{"JP NNN-NNNN", "JP", "100-0001", true},
		{"JP without hyphen", "JP", "1000001", false},
		{"JP too short", "JP", "100-001", false},

		{"GP 971xx", "GP", "97110", true},
		{"GP 972xx", "GP", "97200", false},
		{"MQ 972xx", "MQ", "97200", true},
		{"MQ 971xx", "MQ", "97110", false},
		{"GF 973xx", "GF", "97300", true},
		{"GF metropolitan code", "GF", "75001", false},
		{"RE 974xx", "RE", "97400", true},
		{"RE 976xx", "RE", "97600", false},
		{"YT 976xx", "YT", "97600", true},
		{"YT 975xx", "YT", "97500", false},

		{"unknown country letters and digits", "BR", "01310-100", true},
		{"unknown country with space", "IE", "D02 X285", true},
		{"unknown country single character", "ZZ", "1", true},
		{"unknown country twelve characters", "ZZ", "ABCDEF-12345", true},
		{"unknown country thirteen characters", "ZZ", "ABCDEF-123456", false},
		{"unknown country empty", "ZZ", "", false},
		{"unknown country only spaces and hyphens", "ZZ", " - ", false},
		{"unknown country punctuation", "ZZ", "12.345", false},
		{"unknown country non-ASCII", "ZZ", "ÅB 12", false},
		{"empty country is unknown", "", "ABC 123", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.country, tt.postcode); got != tt.want {
				t.Errorf("Valid(%q, %q) = %v, want %v", tt.country, tt.postcode, got, tt.want)
			}
		})
	}
}

func TestEveryDatasetPostcodeIsValidForFrance(t *testing.T) {
	for key := range frPlaces() {
		code := fmt.Sprintf("%05d", key)
		if !Valid("FR", code) {
			t.Errorf("dataset postcode %s is not Valid for FR", code)
		}
		if _, ok := Lookup("FR", code); !ok {
			t.Errorf("dataset postcode %s not found by Lookup", code)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	codes := []string{"75001", "13001", "20000", "97400", "69001", "00000", "33000", "59000"}
	frPlaces() // parse outside the timed loop
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Lookup("FR", codes[i%len(codes)])
	}
}
