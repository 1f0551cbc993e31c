package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable marks an error of a Redis that cannot serve right now:
// it is unreachable, it is a replica that refuses writes (READONLY), it
// is loading its data (LOADING), it lost its primary (MASTERDOWN), it
// lacks the replicas a write needs (NOREPLICAS), or it did not answer in
// time. During a Sentinel failover the store answers this until the
// sentinels have promoted a replica and the clients have followed it. It
// is a transient condition: the trigger answers 503 with Retry-After, and
// a task that meets it is retried without counting the attempt.
var ErrUnavailable = errors.New("job: redis unavailable")

// Unavailable returns err wrapped with [ErrUnavailable] when it says that
// Redis cannot serve right now, and any other error (or nil) unchanged.
// Apply it to errors of Redis clients only (the store's, asynq's): a
// network error of another service says nothing about Redis.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !redisDown(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// redisDown classifies an error of a Redis client.
func redisDown(err error) bool {
	var nerr net.Error
	switch {
	case errors.As(err, &nerr),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout):
		return true
	}
	return redis.IsReadOnlyError(err) || redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsNoReplicasError(err)
}
