//! The AWS event-stream binary encoding (`application/vnd.amazon.eventstream`), as
//! `InvokeWithResponseStream` answers with it.
//!
//! A message is `[u32 total length][u32 headers length][u32 CRC32 of the first 8 bytes]
//! [headers][payload][u32 CRC32 of everything before it]`, all big-endian. Only string
//! headers (type 7) are written: `[u8 name length][name][7][u16 value length][value]`.
//! The decoder reads every header type the format defines, so it can check what any
//! encoder produced; non-string values are rendered as text.

use bytes::{BufMut, Bytes, BytesMut};

/// Prelude (two lengths and their CRC) plus the trailing message CRC.
const OVERHEAD: usize = 16;
/// The format's own limits: a header name is at most 255 bytes, a string value 32 KiB - 1,
/// all headers together 128 KiB and a whole message 16 MiB.
const MAX_HEADERS_LEN: usize = 128 * 1024;
const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
const MAX_STRING_VALUE_LEN: usize = 32 * 1024 - 1;
const HEADER_TYPE_STRING: u8 = 7;

/// One event-stream message with string headers. Payloads larger than a message may hold
/// (16 MiB with its headers) are the caller's to split; `payload_chunk` callers pass
/// what the function wrote in one piece, which is far smaller.
pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    debug_assert!(
        headers_len <= MAX_HEADERS_LEN,
        "event-stream headers too long"
    );
    let total = OVERHEAD + headers_len + payload.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    out.put_u32(u32::try_from(headers_len).unwrap_or(u32::MAX));
    out.put_u32(crc32fast::hash(&out[..8]));
    for (name, value) in headers {
        let name = name.as_bytes();
        let value = value.as_bytes();
        debug_assert!(
            name.len() <= usize::from(u8::MAX),
            "event-stream header name too long"
        );
        debug_assert!(
            value.len() <= MAX_STRING_VALUE_LEN,
            "event-stream header value too long"
        );
        out.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.put_slice(name);
        out.put_u8(HEADER_TYPE_STRING);
        out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        out.put_slice(value);
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.freeze()
}

/// A `PayloadChunk` event: the bytes the function streamed, verbatim.
pub(crate) fn payload_chunk(bytes: &[u8]) -> Bytes {
    encode(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    )
}

/// The final `InvokeComplete` event: `{"ErrorCode":…,"ErrorDetails":…,"LogResult":…}` with
/// absent members omitted (a successful invocation without `LogType: Tail` sends `{}`).
pub(crate) fn invoke_complete(
    error_code: Option<&str>,
    error_details: Option<&str>,
    log_result: Option<&str>,
) -> Bytes {
    let mut body = serde_json::Map::new();
    for (key, value) in [
        ("ErrorCode", error_code),
        ("ErrorDetails", error_details),
        ("LogResult", log_result),
    ] {
        if let Some(value) = value {
            body.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }
    let payload = serde_json::Value::Object(body).to_string();
    encode(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// Decodes a buffer holding whole messages into `(headers, payload)` pairs, checking
/// lengths and both CRCs. For tests and round-trip checks.
#[allow(dead_code)]
#[allow(clippy::type_complexity)]
pub(crate) fn decode(buf: &[u8]) -> Result<Vec<(Vec<(String, String)>, Vec<u8>)>, String> {
    let mut messages = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < OVERHEAD {
            return Err(format!("truncated prelude: {} bytes left", rest.len()));
        }
        let total = read_u32(rest, 0) as usize;
        let headers_len = read_u32(rest, 4) as usize;
        let prelude_crc = read_u32(rest, 8);
        if crc32fast::hash(&rest[..8]) != prelude_crc {
            return Err("prelude CRC mismatch".to_owned());
        }
        if !(OVERHEAD..=MAX_MESSAGE_LEN).contains(&total) {
            return Err(format!("bad message length {total}"));
        }
        if headers_len > MAX_HEADERS_LEN || headers_len > total - OVERHEAD {
            return Err(format!("bad headers length {headers_len}"));
        }
        if rest.len() < total {
            return Err(format!(
                "truncated message: {total} bytes declared, {} left",
                rest.len()
            ));
        }
        let message = &rest[..total];
        if crc32fast::hash(&message[..total - 4]) != read_u32(message, total - 4) {
            return Err("message CRC mismatch".to_owned());
        }
        let headers = decode_headers(&message[12..12 + headers_len])?;
        let payload = message[12 + headers_len..total - 4].to_vec();
        messages.push((headers, payload));
        rest = &rest[total..];
    }
    Ok(messages)
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn decode_headers(mut buf: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if buf.len() < n {
            return Err("truncated header".to_owned());
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Ok(head)
    }
    fn int(bytes: &[u8]) -> i64 {
        let mut value: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            -1
        } else {
            0
        };
        for byte in bytes {
            value = (value << 8) | i64::from(*byte);
        }
        value
    }
    let mut headers = Vec::new();
    while !buf.is_empty() {
        let name_len = usize::from(take(&mut buf, 1)?[0]);
        let name = String::from_utf8(take(&mut buf, name_len)?.to_vec())
            .map_err(|_| "header name is not UTF-8".to_owned())?;
        let value = match take(&mut buf, 1)?[0] {
            0 => "true".to_owned(),
            1 => "false".to_owned(),
            2 => int(take(&mut buf, 1)?).to_string(),
            3 => int(take(&mut buf, 2)?).to_string(),
            4 => int(take(&mut buf, 4)?).to_string(),
            5 | 8 => int(take(&mut buf, 8)?).to_string(),
            9 => take(&mut buf, 16)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            kind @ (6 | 7) => {
                let len = usize::from(u16::from_be_bytes([
                    take(&mut buf, 1)?[0],
                    take(&mut buf, 1)?[0],
                ]));
                let bytes = take(&mut buf, len)?;
                if kind == 7 {
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| format!("header {name} is not UTF-8"))?
                } else {
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                }
            }
            other => return Err(format!("unknown header type {other}")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The bytes of a `PayloadChunk` with payload `hi\n`, as botocore 1.44.8 reads them:
    /// `EventStreamBuffer` yields headers `{':event-type': 'PayloadChunk', ':content-type':
    /// 'application/octet-stream', ':message-type': 'event'}` and payload `b'hi\n'`, and the
    /// Lambda model's `InvokeWithResponseStream` parser `{'PayloadChunk': {'Payload': b'hi\n'}}`.
    const PAYLOAD_CHUNK_HI: &str = concat!(
        "0000006d",
        "0000005a",
        "8f3ed47f",
        "0b3a6576656e742d74797065",
        "07000c",
        "5061796c6f61644368756e6b",
        "0d3a636f6e74656e742d74797065",
        "070018",
        "6170706c69636174696f6e2f6f637465742d73747265616d",
        "0d3a6d6573736167652d74797065",
        "070005",
        "6576656e74",
        "68690a",
        "e883c1dd",
    );

    /// `InvokeComplete` with only a log result (`{"LogResult":"bG9n"}`); botocore's Lambda
    /// parser reads it as `{'InvokeComplete': {'LogResult': 'bG9n'}}`.
    const INVOKE_COMPLETE_LOG: &str = concat!(
        "00000078",
        "00000054",
        "c086e18a",
        "0b3a6576656e742d74797065",
        "07000e",
        "496e766f6b65436f6d706c657465",
        "0d3a636f6e74656e742d74797065",
        "070010",
        "6170706c69636174696f6e2f6a736f6e",
        "0d3a6d6573736167652d74797065",
        "070005",
        "6576656e74",
        "7b224c6f67526573756c74223a226247396e227d",
        "6be3b912",
    );

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn payload_chunk_matches_the_frozen_vector() {
        assert_eq!(hex(&payload_chunk(b"hi\n")), PAYLOAD_CHUNK_HI);
    }

    #[test]
    fn invoke_complete_matches_the_frozen_vector() {
        assert_eq!(
            hex(&invoke_complete(None, None, Some("bG9n"))),
            INVOKE_COMPLETE_LOG
        );
    }

    #[test]
    fn layout_lengths_and_crcs() {
        let message = payload_chunk(b"hello");
        let total = read_u32(&message, 0) as usize;
        let headers_len = read_u32(&message, 4) as usize;
        assert_eq!(total, message.len());
        assert_eq!(total, 16 + headers_len + 5);
        assert_eq!(read_u32(&message, 8), crc32fast::hash(&message[..8]));
        assert_eq!(
            read_u32(&message, total - 4),
            crc32fast::hash(&message[..total - 4])
        );
        assert_eq!(&message[12 + headers_len..total - 4], b"hello");
    }

    #[test]
    fn round_trip_of_a_whole_stream() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&payload_chunk(b"chunk-0\n"));
        stream.extend_from_slice(&payload_chunk(&[0, 1, 2, 255]));
        stream.extend_from_slice(&payload_chunk(b""));
        stream.extend_from_slice(&invoke_complete(
            Some("Unhandled"),
            Some("{\"errorMessage\":\"boom\"}"),
            Some("bG9n"),
        ));
        let messages = decode(&stream).unwrap();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0].1, b"chunk-0\n");
        assert_eq!(messages[1].1, [0, 1, 2, 255]);
        assert!(messages[2].1.is_empty());
        for (headers, _) in &messages[..3] {
            assert_eq!(
                headers,
                &[
                    (":event-type".to_owned(), "PayloadChunk".to_owned()),
                    (
                        ":content-type".to_owned(),
                        "application/octet-stream".to_owned()
                    ),
                    (":message-type".to_owned(), "event".to_owned()),
                ]
            );
        }
        let (headers, payload) = &messages[3];
        assert_eq!(header(headers, ":event-type"), Some("InvokeComplete"));
        assert_eq!(header(headers, ":content-type"), Some("application/json"));
        assert_eq!(header(headers, ":message-type"), Some("event"));
        let body: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ErrorCode": "Unhandled", "ErrorDetails": "{\"errorMessage\":\"boom\"}", "LogResult": "bG9n"})
        );
    }

    #[test]
    fn invoke_complete_omits_absent_members() {
        let messages = decode(&invoke_complete(None, None, None)).unwrap();
        assert_eq!(messages[0].1, b"{}");
        let messages = decode(&invoke_complete(Some("Unhandled"), None, None)).unwrap();
        assert_eq!(messages[0].1, br#"{"ErrorCode":"Unhandled"}"#);
    }

    #[test]
    fn arbitrary_string_headers_round_trip() {
        let message = encode(&[("a", ""), ("name-with-ü", "välue")], b"x");
        let messages = decode(&message).unwrap();
        assert_eq!(
            messages[0].0,
            [
                ("a".to_owned(), String::new()),
                ("name-with-ü".to_owned(), "välue".to_owned())
            ]
        );
    }

    #[test]
    fn decode_rejects_corruption_and_truncation() {
        let message = payload_chunk(b"data");
        for at in [0, 5, 9, 20, message.len() - 6, message.len() - 1] {
            let mut bad = message.to_vec();
            bad[at] ^= 0x01;
            assert!(decode(&bad).is_err(), "flipped byte {at} was accepted");
        }
        assert!(decode(&message[..message.len() - 1]).is_err());
        assert!(decode(&message[..10]).is_err());
        assert!(decode(b"").unwrap().is_empty());
    }

    #[test]
    fn decode_reads_other_header_types() {
        // A botocore-style message with bool, byte, short, int, long, bytes, timestamp and uuid headers.
        let mut headers = Vec::new();
        let mut put = |name: &str, kind: u8, value: &[u8]| {
            headers.push(u8::try_from(name.len()).unwrap());
            headers.extend_from_slice(name.as_bytes());
            headers.push(kind);
            headers.extend_from_slice(value);
        };
        put("t", 0, &[]);
        put("f", 1, &[]);
        put("b", 2, &[0xff]);
        put("s", 3, &[0x01, 0x00]);
        put("i", 4, &[0, 0, 0, 42]);
        put("l", 5, &[0, 0, 0, 0, 0, 0, 0, 7]);
        put("y", 6, &[0, 2, 0xab, 0xcd]);
        put("ts", 8, &[0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
        put("u", 9, &[0x11; 16]);
        let total = 16 + headers.len();
        let mut message = Vec::new();
        message.extend_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
        message.extend_from_slice(&u32::try_from(headers.len()).unwrap().to_be_bytes());
        let crc = crc32fast::hash(&message);
        message.extend_from_slice(&crc.to_be_bytes());
        message.extend_from_slice(&headers);
        let crc = crc32fast::hash(&message);
        message.extend_from_slice(&crc.to_be_bytes());
        let decoded = decode(&message).unwrap();
        let values: Vec<&str> = decoded[0].0.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "true",
                "false",
                "-1",
                "256",
                "42",
                "7",
                "abcd",
                "1000",
                &"11".repeat(16)
            ]
        );
    }
}
