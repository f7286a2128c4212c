package sender

import (
	"context"
	"log/slog"
)

// LogWarning is what serve logs at start-up, and a replica as it builds a
// tenant, once for every tenant and channel whose sender is "log" (with the
// tenant and the channel).
const LogWarning = "log sender: one-time codes are written to the log; never use it in production"

// logSender "delivers" a message by logging it, for development and tests.
//
// Its Send is the ONLY place in the whole service where a one-time code is
// ever logged, and only because the "log" sender type was configured: every
// other path must keep codes out of logs and error strings.
type logSender struct {
	logger *slog.Logger
}

// Send writes exactly one Info line "otp sent" with the tenant, the channel,
// the full destination, the code and its expiry.
func (s *logSender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.NewContact != "" {
		s.logger.LogAttrs(ctx, slog.LevelInfo, "contact change notice sent", slog.String("tenant", m.Tenant),
			slog.String("channel", string(m.Channel)), slog.String("to", m.To), slog.String("newContact", m.NewContact),
			slog.String("change", string(m.change())))
		return nil
	}
	attrs := []slog.Attr{
		slog.String("tenant", m.Tenant),
		slog.String("channel", string(m.Channel)),
		slog.String("to", m.To),
		slog.String("code", m.Code),
		slog.Time("expiresAt", m.ExpiresAt),
	}
	if m.Link != "" {
		attrs = append(attrs, slog.String("link", m.Link))
	}
	if len(m.Fills) > 0 {
		attrs = append(attrs, slog.Any("fills", m.Fills))
	}
	if m.MoreFills > 0 {
		attrs = append(attrs, slog.Int("moreFills", m.MoreFills))
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "otp sent", attrs...)
	return nil
}
