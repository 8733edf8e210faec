// Package stored keeps values made once in Caddy's storage, agreed on by
// every instance that shares it.
package stored

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/caddyserver/certmagic"
)

// Once returns what is kept in Caddy's storage under name, parsed by
// parse, making it with create the first time. It is made under the
// storage lock and read again once the lock is held, so instances sharing
// storage that start at the same time agree on one value.
func Once[T any](ctx context.Context, storage certmagic.Storage, name string,
	parse func([]byte) (T, error), create func() (T, []byte, error)) (T, error) {
	if v, err := Load(ctx, storage, name, parse); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return v, err
	}
	var zero T
	if err := storage.Lock(ctx, name); err != nil {
		return zero, fmt.Errorf("lock %s: %w", name, err)
	}
	defer storage.Unlock(context.WithoutCancel(ctx), name)
	if v, err := Load(ctx, storage, name, parse); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return v, err
	}
	v, b, err := create()
	if err != nil {
		return zero, err
	}
	if err := storage.Store(ctx, name, b); err != nil {
		return zero, fmt.Errorf("store %s: %w", name, err)
	}
	return v, nil
}

// Load reads name from storage and parses it.
func Load[T any](ctx context.Context, storage certmagic.Storage, name string, parse func([]byte) (T, error)) (T, error) {
	b, err := storage.Load(ctx, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(b)
}
