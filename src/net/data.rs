//! The data protocol's side of the event loop: outbound requests waiting
//! for answers, and inbound requests waiting for the local replica.
//!
//! The event loop must never wait on the disk, so an inbound request is
//! handed to the replica through a bounded channel together with a oneshot
//! for its answer, and the loop picks the answer up when it is ready.

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::behaviour::Behaviour;
use super::{InboundRequest, RequestError};
use crate::protocol::{DataRequest, DataResponse, Refusal};

/// An answer from the local replica, ready to be sent back.
pub(super) type ReadyAnswer = (ResponseChannel<DataResponse>, DataResponse);

/// Who waits for an outbound request's answer, and the per-peer slot it
/// holds until the exchange ends.
type Waiting = (
    oneshot::Sender<Result<DataResponse, RequestError>>,
    OwnedSemaphorePermit,
);

/// The data protocol's bookkeeping.
pub(super) struct DataExchange {
    inbound: mpsc::Sender<InboundRequest>,
    waiting: HashMap<OutboundRequestId, Waiting>,
    /// Answers the replica is working on.
    pub(super) answers: FuturesUnordered<BoxFuture<'static, ReadyAnswer>>,
}

impl DataExchange {
    pub(super) fn new(inbound: mpsc::Sender<InboundRequest>) -> Self {
        Self {
            inbound,
            waiting: HashMap::new(),
            answers: FuturesUnordered::new(),
        }
    }

    /// Remembers who waits for the answer to request `id`.
    pub(super) fn sent(
        &mut self,
        id: OutboundRequestId,
        reply: oneshot::Sender<Result<DataResponse, RequestError>>,
        slot: OwnedSemaphorePermit,
    ) {
        self.waiting.insert(id, (reply, slot));
    }

    /// Handles a protocol event. Returns an answer to send at once, when
    /// the replica cannot take the request.
    pub(super) fn on_event(
        &mut self,
        event: request_response::Event<DataRequest, DataResponse>,
    ) -> Option<ReadyAnswer> {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(peer, request, channel),
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((reply, _slot)) = self.waiting.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
                None
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "data request failed");
                if let Some((reply, _slot)) = self.waiting.remove(&request_id) {
                    let _ = reply.send(Err(RequestError::Failed(format!("{peer}: {error}"))));
                }
                None
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "data request from a peer failed");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: DataRequest,
        channel: ResponseChannel<DataResponse>,
    ) -> Option<ReadyAnswer> {
        let (reply, answer) = oneshot::channel();
        let inbound = InboundRequest {
            peer,
            request,
            reply,
        };
        if self.inbound.try_send(inbound).is_err() {
            return Some((
                channel,
                DataResponse::refused(Refusal::Unavailable, "too many requests waiting"),
            ));
        }
        self.answers.push(
            answer
                .map(move |answer| {
                    let response = answer.unwrap_or_else(|_| {
                        DataResponse::refused(Refusal::Unavailable, "the replica stopped")
                    });
                    (channel, response)
                })
                .boxed(),
        );
        None
    }
}

/// Sends the replica's answer back to the peer that asked.
pub(super) fn respond(
    swarm: &mut Swarm<Behaviour>,
    channel: ResponseChannel<DataResponse>,
    response: DataResponse,
) {
    // Fails only if the asker gave up (timed out or disconnected).
    let _ = swarm.behaviour_mut().data.send_response(channel, response);
}
