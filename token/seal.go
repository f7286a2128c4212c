package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// Sealer encrypts secrets at rest with AES-256-GCM (signing keys here, tenant
// secrets in the admin rooms); what they belong to is bound as additional
// data, so a sealed value cannot be moved to another owner.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer keyed with a 32-byte key.
func NewSealer(key []byte) (Sealer, error) {
	if len(key) != 32 {
		return Sealer{}, errors.New("token: seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return Sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	return Sealer{aead: aead}, err
}

// Seal encrypts plain for the owner ad.
func (s Sealer) Seal(plain []byte, ad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(ad)), nil
}

// ErrSealed means the secret differs from the one that sealed the value.
var ErrSealed = errors.New("cannot open a sealed value: is the secret the one it was sealed with?")

// Open decrypts what Seal sealed for the owner ad.
func (s Sealer) Open(sealed []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrSealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}
