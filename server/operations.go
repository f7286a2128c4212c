package server

import (
	"bytes"
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/customerd/customerd/gen/api"
)

// GetJwks answers the tenant's public keys.
func (s *Server) GetJwks(ctx context.Context, _ api.GetJwksRequestObject) (api.GetJwksResponseObject, error) {
	set, err := s.tokens.JWKS(ctx, requestTenant(ctx).ID)
	if err != nil {
		return nil, err
	}
	return jwksBody(set), nil
}

type jwksBody []byte

func (b jwksBody) VisitGetJwksResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// GetHealth answers while the process serves HTTP.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: api.Ok}, nil
}

// GetReadiness answers 200 when the database answers.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	if err := s.store.Ping(ctx); err != nil {
		return nil, err
	}
	return api.GetReadiness200JSONResponse{Status: api.Ok}, nil
}

// GetMetrics answers the Prometheus metrics on the metrics listener, and
// 404 on the API's, so that they are not public with the API.
func (s *Server) GetMetrics(context.Context, api.GetMetricsRequestObject) (api.GetMetricsResponseObject, error) {
	if s.metrics == nil {
		return nil, echo.ErrNotFound
	}
	families, err := s.metrics.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return api.GetMetrics200TextResponse(buf.String()), nil
}

var _ prometheus.Gatherer = (*prometheus.Registry)(nil)
