package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		give string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"512MiB", 512 << 20, true}, {"10GiB", 10 << 30, true}, {"100B", 100, true},
		{"12XB", 0, false}, {"-1", 0, false}, {"ten", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.give)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.give, got, err, tt.want, tt.ok)
		}
	}
}
