// Type-checked in CI (tsc --strict --noEmit -p typecheck) against WeChat's
// own types from miniprogram-api-typings: what a TypeScript mini program
// writes with this helper must compile as it is, with no casts.
/// <reference types="miniprogram-api-typings" />

import { createAuth, Auth, AuthError, LoginResponse, PhoneNumber, RequestOptions } from '../wechat-auth';

// The real wx object is accepted as the helper's wx.
const auth: Auth = createAuth({ baseURL: 'https://api.example.com', wx });

interface Order {
  id: string;
}

Page({
  data: { openid: '', phone: '' },

  async onLoad() {
    const login: LoginResponse = await auth.login();
    this.setData({ openid: login.openid });
    const res = await auth.request<Order[]>({ url: '/api/orders', method: 'GET' });
    const first: string | undefined = res.data[0]?.id;
    console.log(res.statusCode, first);
  },

  // <button open-type="getPhoneNumber" bindgetphonenumber="onGetPhoneNumber">
  async onGetPhoneNumber(e: WechatMiniprogram.ButtonGetPhoneNumber) {
    const fromDetail: PhoneNumber = await auth.getPhoneNumber(e.detail);
    const fromEvent: PhoneNumber = await auth.getPhoneNumber(e);
    this.setData({ phone: fromDetail.phoneNumber || fromEvent.purePhoneNumber });
  },

  // <button open-type="getUserInfo" bindgetuserinfo="onGetUserInfo">
  async onGetUserInfo(e: WechatMiniprogram.ButtonGetUserInfo) {
    const profile = await auth.getUserInfo<{ nickName: string }>(e.detail);
    console.log(profile.nickName, await auth.getUserInfo(e));
  },

  async onProfileTap() {
    const result: WechatMiniprogram.GetUserProfileSuccessCallbackResult = await wx.getUserProfile({ desc: 'show your profile' });
    await auth.getUserInfo(result);
  },

  async logout() {
    try {
      await auth.logout();
    } catch (err) {
      const e = err as AuthError;
      console.log(e.code, e.statusCode, e.errMsg);
    }
  },
});

// wx.request's own option type, without its callbacks, is a RequestOptions.
const wxOptions: Omit<WechatMiniprogram.RequestOption, 'success' | 'fail' | 'complete'> = {
  url: '/api/items',
  method: 'PUT',
  data: { a: 1 },
  header: { 'content-type': 'application/json' },
};
const accepted: RequestOptions = wxOptions;
void auth.request(accepted);

// wx.request has no PATCH, so the helper's type refuses it.
// @ts-expect-error PATCH is not a wx.request method
void auth.request({ url: '/api/items/1', method: 'PATCH' });

const token: string | null = auth.getToken();
console.log(token);

// A <web-view> page opens the web site logged in.
void auth.webviewURL('/shop/').then((url: string) => console.log(url));
