//! Length-prefixed frames for request/response protocols.
//!
//! A frame is a 4-byte big-endian length and that many bytes of payload.
//! The length is checked against the message type's limit before anything
//! is allocated, and the payload is decoded under the same limit, so a peer
//! cannot make this one allocate more than the limit by lying about sizes.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::codec::{self, CodecError};
use crate::gossip::{self, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Request, Response};
use crate::protocol::{self, DataRequest, DataResponse, MAX_MESSAGE_BYTES};

/// Why a frame could not be read or written. Reads and writes report it to
/// libp2p inside an `io::Error` of kind `InvalidData`.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame announced more bytes than its message type allows.
    #[error("a frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The length announced.
        len: usize,
        /// The message type's limit.
        limit: usize,
    },
    /// A message encoded to more bytes than its type allows.
    #[error("a message of {len} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The encoded length.
        len: usize,
        /// The message type's limit.
        limit: usize,
    },
    /// The message could not be encoded, or the payload does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A membership message that breaks its limits.
    #[error(transparent)]
    Membership(#[from] gossip::InvalidMessage),
    /// A data message that breaks its limits.
    #[error(transparent)]
    Data(#[from] protocol::InvalidMessage),
}

/// A message that can cross the wire in a frame.
pub trait WireMessage: Sized + Send + Sync {
    /// The largest encoded size accepted.
    const MAX_BYTES: usize;

    /// Encodes the message.
    ///
    /// # Errors
    /// [`FrameError::Codec`] if it cannot be encoded.
    fn to_bytes(&self) -> Result<Vec<u8>, FrameError>;

    /// Decodes and validates a message of at most [`Self::MAX_BYTES`].
    ///
    /// # Errors
    /// [`FrameError`] saying what is wrong with the bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, FrameError>;
}

/// Implements [`WireMessage`] for a message type with a `validate` method,
/// encoded by the codec and decoded under `$limit`.
macro_rules! wire_message {
    ($message:ty, $limit:expr) => {
        impl WireMessage for $message {
            const MAX_BYTES: usize = $limit;

            fn to_bytes(&self) -> Result<Vec<u8>, FrameError> {
                Ok(codec::encode(self)?)
            }

            fn from_bytes(bytes: &[u8]) -> Result<Self, FrameError> {
                checked(
                    codec::decode_limited::<_, { $limit }>(bytes),
                    <$message>::validate,
                )
            }
        }
    };
}

wire_message!(Request, MAX_REQUEST_BYTES);
wire_message!(Response, MAX_RESPONSE_BYTES);
wire_message!(DataRequest, MAX_MESSAGE_BYTES);
wire_message!(DataResponse, MAX_MESSAGE_BYTES);

/// A decoded message that has also passed `validate`.
fn checked<T, E>(
    decoded: Result<T, CodecError>,
    validate: impl FnOnce(&T) -> Result<(), E>,
) -> Result<T, FrameError>
where
    FrameError: From<E>,
{
    let message = decoded?;
    validate(&message)?;
    Ok(message)
}

/// A request/response codec of framed `Req` and `Resp` messages.
pub struct FramedCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for FramedCodec<Req, Resp> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req, Resp> Clone for FramedCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<Req: WireMessage, Resp: WireMessage> request_response::Codec for FramedCodec<Req, Resp> {
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &res).await
    }
}

async fn read_message<M: WireMessage, T: AsyncRead + Unpin>(io: &mut T) -> io::Result<M> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > M::MAX_BYTES {
        return Err(invalid(FrameError::FrameTooLarge {
            len,
            limit: M::MAX_BYTES,
        }));
    }
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    M::from_bytes(&payload).map_err(invalid)
}

async fn write_message<M: WireMessage, T: AsyncWrite + Unpin>(
    io: &mut T,
    message: &M,
) -> io::Result<()> {
    let payload = message.to_bytes().map_err(invalid)?;
    let too_large = || {
        invalid(FrameError::MessageTooLarge {
            len: payload.len(),
            limit: M::MAX_BYTES,
        })
    };
    if payload.len() > M::MAX_BYTES {
        return Err(too_large());
    }
    let len = u32::try_from(payload.len()).map_err(|_| too_large())?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&payload).await?;
    io.close().await
}

fn invalid(error: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::PeerId;

    #[tokio::test]
    async fn a_frame_round_trips() {
        let request = Request::PingReq {
            target: PeerId::random(),
        };
        let mut wire = Cursor::new(Vec::new());
        write_message(&mut wire, &request).await.unwrap();
        let mut wire = Cursor::new(wire.into_inner());
        let back: Request = read_message(&mut wire).await.unwrap();
        assert_eq!(back, request);
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading() {
        let mut wire = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let error = read_message::<Request, _>(&mut wire).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(
            frame_error(&error),
            FrameError::FrameTooLarge {
                limit: MAX_REQUEST_BYTES,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            format!(
                "a frame of {} bytes exceeds the limit of {MAX_REQUEST_BYTES}",
                u32::MAX
            )
        );
    }

    fn frame_error(error: &io::Error) -> &FrameError {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<FrameError>())
            .expect("frame errors travel inside the io::Error")
    }

    #[tokio::test]
    async fn a_message_over_its_limits_is_refused_as_such() {
        let mut payload = codec::encode(&DataRequest::ListRecords {
            prefix: String::new(),
            after: None,
            limit: u32::MAX,
        })
        .unwrap();
        let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        frame.append(&mut payload);
        let error = read_message::<DataRequest, _>(&mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert!(matches!(
            frame_error(&error),
            FrameError::Data(protocol::InvalidMessage::TooMany {
                what: "listing limit",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        let mut frame = 5u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xff; 5]);
        let error = read_message::<Response, _>(&mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(frame_error(&error), FrameError::Codec(_)));
    }
}
