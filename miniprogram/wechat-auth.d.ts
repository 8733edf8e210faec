// Type declarations for wechat-auth.js, the mini program client of the
// wechat_auth Caddy module.

export interface AuthOptions {
  /** Prefixed to relative request URLs, e.g. "https://api.example.com". */
  baseURL?: string;
  /** Sent with the login code; needed only when the site serves several mini programs. */
  appid?: string;
  /** Must match the server's `route_prefix`. Default "/wx". */
  routePrefix?: string;
  /** wx storage key holding the token. Default "wechat_auth_token". */
  storageKey?: string;
  /** The `wx` object to use instead of the global one (for tests). */
  wx?: WxLike;
  /**
   * Milliseconds for the helper's own calls (wx.login and the login
   * together, logout), and the default timeout of request(). Default: 60 s
   * for a login, wx.request's otherwise.
   */
  timeout?: number;
}

/** What POST {routePrefix}/login answers. */
export interface LoginResponse {
  token: string;
  token_type: 'Bearer';
  /** Seconds until the token expires. */
  expires_in: number;
  openid: string;
  unionid?: string;
  [key: string]: unknown;
}

/** What is kept in storage under `storageKey`. */
export interface StoredToken {
  token: string;
  /** Absolute expiry, milliseconds since the epoch (Date.now() clock). */
  expiresAt?: number;
  openid?: string;
  unionid?: string;
}

/** wx.request options, without the callbacks (the result is a Promise). */
export interface RequestOptions {
  /** Absolute, or relative to `baseURL`. */
  url: string;
  /** wx.request's methods (it has no PATCH). */
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS' | 'TRACE' | 'CONNECT';
  data?: string | object | ArrayBuffer;
  header?: Record<string, string>;
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
  timeout?: number;
  [key: string]: unknown;
}

export interface Response<T = any> {
  statusCode: number;
  data: T;
  header: Record<string, string>;
}

/**
 * Rejection of login(), getUserInfo(), getPhoneNumber() and webviewURL(), and
 * of request() when a login it needs fails.
 */
export interface AuthError extends Error {
  /** HTTP status, when the server answered. */
  statusCode?: number;
  /**
   * The server's `error` code (e.g. "invalid_code", "decrypt_failed",
   * "session_expired"), "no_data" when the button event carried nothing
   * to send (the user declined), or "logged_out" for a login that logout()
   * overtook.
   */
  code?: string;
  /** The server's JSON answer. */
  data?: any;
  /** The server's answer headers. */
  header?: Record<string, string>;
  /** Seconds to wait before trying again, from the answer's Retry-After. */
  retryAfter?: number;
  /** wx's errMsg, for wx.login / wx.request failures and declined buttons. */
  errMsg?: string;
}

// The detail types name only the fields the helper reads and carry no index
// signature, so WeChat's own types (miniprogram-api-typings'
// WechatMiniprogram.ButtonGetUserInfo['detail'],
// WechatMiniprogram.GetUserProfileSuccessCallbackResult,
// WechatMiniprogram.ButtonGetPhoneNumber['detail']) are accepted as they are,
// in strict mode.

/**
 * Event detail of an open-type="getUserInfo" button, or the result of
 * wx.getUserProfile / wx.getUserInfo.
 */
export interface UserInfoDetail {
  encryptedData: string;
  iv: string;
  rawData?: string;
  signature?: string;
  errMsg?: string;
}

/** Event detail of an open-type="getPhoneNumber" button. */
export interface PhoneNumberDetail {
  /** Current API (base library 2.21.2+). */
  code?: string;
  /** Old API. */
  encryptedData?: string;
  iv?: string;
  errMsg?: string;
}

export interface PhoneNumber {
  phoneNumber: string;
  purePhoneNumber: string;
  countryCode: string | number;
  [key: string]: unknown;
}

export interface Auth {
  /**
   * wx.login, then POST {routePrefix}/login; stores the token. Callers that
   * arrive while a login is under way share it (one wx.login). After a
   * refusal with 403, 429 or 5xx, rejects at once with that error for its
   * Retry-After (at most 5 min) or 30 s, until logout().
   */
  login(): Promise<LoginResponse>;
  /**
   * wx.request with the token attached, as a Promise. Logs in first when there
   * is no unexpired token; on a 401 of wechat_auth's about the token
   * (`WWW-Authenticate: Bearer realm="wechat_auth"`, and an error
   * unauthorized / invalid_token / session_expired or a body that is not
   * JSON, as behind nginx's auth_request), logs in once more and retries
   * once. Every status the request gets resolves; it rejects on a network
   * failure, or with an AuthError when a login it needs fails or `timeout`
   * passes while it waits for one.
   */
  request<T = any>(options: RequestOptions): Promise<Response<T>>;
  /** Posts the detail to {routePrefix}/userinfo; resolves the decrypted object. */
  getUserInfo<T = Record<string, any>>(detail: UserInfoDetail | { detail: UserInfoDetail }): Promise<T>;
  /** Posts `code` (or encryptedData + iv) to {routePrefix}/phone; resolves the phone number. */
  getPhoneNumber<T = PhoneNumber>(detail: PhoneNumberDetail | { detail: PhoneNumberDetail }): Promise<T>;
  /** POST {routePrefix}/logout, then forgets the token even if that failed. Never rejects. */
  logout(): Promise<void>;
  /** The stored token if it has not expired, else null. */
  getToken(): string | null;
  /**
   * POST {routePrefix}/web/handoff with `return_to`: resolves to a one-time
   * link (60 s, no token or openid in it) for a `<web-view>` that opens
   * returnTo logged in with a cookie session. returnTo is a path on the
   * server or a URL under its `web { return_to }` prefixes. Rejects with
   * the server's error (`code`, `statusCode`) otherwise.
   */
  webviewURL(returnTo: string): Promise<string>;
}

/** The part of the `wx` API this helper uses. */
export interface WxLike {
  login(options: { success?: (res: { code: string; errMsg?: string }) => void; fail?: (res: { errMsg: string }) => void }): void;
  request(options: any): any;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: any): void;
  removeStorageSync(key: string): void;
}

export function createAuth(options?: AuthOptions): Auth;
