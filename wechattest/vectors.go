package wechattest

// WeChat's own published test vectors, from the open-data decryption and
// signature documentation of the Mini Program server API.

// UserInfoVector is the wx.getUserInfo example of WeChat's decryption
// documentation: EncryptedData and IV decrypt under SessionKey to
// Plaintext, whose watermark names AppID and whose openId is OpenID.
var UserInfoVector = struct {
	AppID, OpenID, UnionID, SessionKey, EncryptedData, IV, Plaintext string
}{
	AppID:         "wx4f4bc4dec97d474b",
	OpenID:        "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
	UnionID:       "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
	SessionKey:    "tiihtNczf5v6AKRyjwEUhQ==",
	IV:            "r7BXXKkLb8qrSNn05n0qiA==",
	EncryptedData: "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==",
	Plaintext:     `{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}`,
}

// SignatureVector is the rawData signature example of WeChat's
// documentation: Signature = hex(sha1(RawData + SessionKey)).
var SignatureVector = struct {
	RawData, SessionKey, Signature string
}{
	RawData:    `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`,
	SessionKey: "HyVFkGl5F5OQWJZZaNzBBg==",
	Signature:  "75e81ceda165f4ffa64f4068af58c64b8f54b88c",
}
