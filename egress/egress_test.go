package egress

import "testing"

func TestCheckURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://accounts.google.com": true,
		"https://gw.example/sms":      true,
		"http://127.0.0.1:8080/jwks":  true,
		"http://localhost/x":          true,
		"http://[::1]:9/x":            true,
		"http://gw.example/sms":       false,
		"http://10.0.0.1/x":           false,
		"ftp://gw.example":            false,
		"gw.example/sms":              false,
		"":                            false,
		"https://":                    false,
	} {
		if err := CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
