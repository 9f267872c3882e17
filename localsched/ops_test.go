package localsched

import (
	"reflect"
	"testing"
)

// TestRestartTargets: -1 restarts every container, a known index that one, and
// anything else is refused; -2 used to restart every container.
func TestRestartTargets(t *testing.T) {
	all := []int{0, 1, 2, 3}
	tests := []struct {
		give    int
		want    []int
		wantErr bool
	}{
		{give: -1, want: all},
		{give: 0, want: []int{0}},
		{give: 3, want: []int{3}},
		{give: 4, wantErr: true},
		{give: -2, wantErr: true},
		{give: 999, wantErr: true},
	}
	for _, tt := range tests {
		got, err := restartTargets(all, tt.give)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("restartTargets(%v, %d) = %v, %v; want %v (error %v)", all, tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}
