package trust

import "testing"

func TestSignVerify(t *testing.T) {
	a, _ := Generate()
	b, _ := Generate()
	msg := []byte("announcement")
	sig := a.Sign(msg)
	if !a.Public().Verify(msg, sig) {
		t.Fatal("a's signature does not verify with a's key")
	}
	if b.Public().Verify(msg, sig) || a.Public().Verify([]byte("announcemenT"), sig) || a.Public().Verify(msg, sig[:10]) {
		t.Fatal("a signature verified with another key, another message or cut short")
	}
}
