package wechatauth

import (
	"slices"
	"testing"
)

// A handler with lines of its own uses none of the wechat app's settings;
// those it does not set itself are named, to be warned of. A handler
// without lines, or whose only lines name the app's apps, uses the app's
// and is warned of nothing.
func TestForHandlerNamesTheAppSettingsItLeavesUnused(t *testing.T) {
	app := &WeChatApp{Apps: []App{{AppID: "wx0000000000000001", AppSecret: "s"}}, Sandbox: true,
		Store: "redis://127.0.0.1:6379/0", SigningKey: "app-signing-key-0123456789abcdef0123"}
	for _, tc := range []struct {
		name      string
		own       sharedConfig
		wantStore string
		unused    []string
	}{
		{"no lines: the app's", sharedConfig{}, app.Store, nil},
		{"a reference to the app's app", sharedConfig{apps: []App{{AppID: "wx0000000000000001"}}}, app.Store, nil},
		{"sandbox of its own", sharedConfig{Sandbox: true}, "", []string{"app", "store", "signing_key"}},
		{"its own app and store", sharedConfig{apps: []App{{AppID: "wx0000000000000002", AppSecret: "t"}}, Store: "memory"},
			"memory", []string{"sandbox", "signing_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, unused := app.forHandler(tc.own)
			if sc.Store != tc.wantStore || !slices.Equal(unused, tc.unused) {
				t.Errorf("store %q, unused %q; want store %q, unused %q", sc.Store, unused, tc.wantStore, tc.unused)
			}
		})
	}
	if _, unused := (&WeChatApp{}).forHandler(sharedConfig{Sandbox: true}); unused != nil {
		t.Errorf("no wechat app settings: unused %q, want none", unused)
	}
}
