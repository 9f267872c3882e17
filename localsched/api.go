package localsched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// maxRequestBytes bounds a scheduler API request body (two packing plans).
const maxRequestBytes = 16 << 20

// operations is what the scheduler API asks of the daemon.
type operations interface {
	kill(ctx context.Context, topology string) error
	restart(ctx context.Context, topology string, container int) error
	update(ctx context.Context, current, proposed *model.PackingPlan) error
	status(ctx context.Context) (*TopologyStatus, error)
}

// apiHandler serves Heron's scheduler API: POST /kill, /restart and /update
// with protobuf bodies, always answered 200 with a SchedulerResponse (OK or
// NOTOK, with the reason in the status message), plus GET /status in JSON.
// afterKill runs once a kill has been answered.
func apiHandler(ops operations, afterKill func()) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/kill", func(w http.ResponseWriter, r *http.Request) {
		req := &model.KillTopologyRequest{}
		if !decode(w, r, req) {
			return
		}
		err := ops.kill(r.Context(), req.GetTopologyName())
		respond(w, err)
		if err == nil && afterKill != nil {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			afterKill()
		}
	})
	mux.HandleFunc("/restart", func(w http.ResponseWriter, r *http.Request) {
		req := &model.RestartTopologyRequest{}
		if !decode(w, r, req) {
			return
		}
		respond(w, ops.restart(r.Context(), req.GetTopologyName(), int(req.GetContainerIndex())))
	})
	mux.HandleFunc("/update", func(w http.ResponseWriter, r *http.Request) {
		req := &model.UpdateTopologyRequest{}
		if !decode(w, r, req) {
			return
		}
		if req.GetCurrentPackingPlan() == nil || req.GetProposedPackingPlan() == nil {
			respond(w, errors.New("update: the request lacks the current or the proposed packing plan"))
			return
		}
		respond(w, ops.update(r.Context(), req.GetCurrentPackingPlan(), req.GetProposedPackingPlan()))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		st, err := ops.status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	return mux
}

// decode reads a POSTed protobuf body; on failure it answers NOTOK itself.
func decode(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		respond(w, fmt.Errorf("%s: bad %s body: %w", r.URL.Path, m.ProtoReflect().Descriptor().Name(), err))
		return false
	}
	return true
}

func respond(w http.ResponseWriter, err error) {
	b, merr := proto.Marshal(schedulerResponse(err))
	if merr != nil {
		http.Error(w, merr.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
