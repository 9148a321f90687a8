package rediscluster

import "testing"

// keySlot agrees with the slots Redis answers to CLUSTER KEYSLOT, and
// hashes only a key's hash tag when it has one.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo":       12182,
		"123456789": 12739, // CRC16/XMODEM's check value, 0x31C3
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("{user1000}.following") != keySlot("user1000") || keySlot("{}x") == keySlot("x") {
		t.Error("hash tags: {user1000}.following must share user1000's slot, and an empty tag counts for nothing")
	}
}
