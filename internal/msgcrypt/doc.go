// Package msgcrypt is the crypto of WeChat's message push (消息推送): the
// URL-check and msg_signature signatures, the AES-256-CBC scheme of
// WXBizMsgCrypt with its 32-byte-block PKCS#7 and trailing appid, and the
// XML and JSON envelopes around it. It also reads the few fields of a
// decrypted event that a receiver needs to deliver it (sender, MsgId, event
// id), without ever turning a 19-digit MsgId into a float.
package msgcrypt
