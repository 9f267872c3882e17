package localsched

import (
	"errors"

	"egret/heron/model"

	"google.golang.org/protobuf/proto"
)

// schedulerResponse is Heron's answer to a scheduler API call: OK, or NOTOK
// with the reason in the status message.
func schedulerResponse(err error) *model.SchedulerResponse {
	st := &model.Status{Status: model.StatusCode_OK.Enum()}
	if err != nil {
		st.Status = model.StatusCode_NOTOK.Enum()
		st.Message = proto.String(err.Error())
	}
	return &model.SchedulerResponse{Status: st}
}

// responseError turns a SchedulerResponse into nil (OK) or an error.
func responseError(r *model.SchedulerResponse) error {
	if r.GetStatus().GetStatus() == model.StatusCode_OK {
		return nil
	}
	if m := r.GetStatus().GetMessage(); m != "" {
		return errors.New(m)
	}
	return errors.New("the scheduler answered NOTOK")
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }
