// Package compare benchmarks silenceper/wechat's miniprogram/encryptor,
// what most Go users would otherwise use to decrypt open data, on the input
// wechat_auth's own BenchmarkDecryptUserInfo uses. It is a module of its own
// so wechat_auth does not depend on silenceper/wechat; bench/compare.sh runs
// both benchmarks in alternating rounds and prints the ratio.
package compare
