//! Signing in to the page with an access token, for a peer whose API
//! needs one (see `api::auth`).
//!
//! The token goes into a cookie the page's scripts cannot read
//! (`HttpOnly`), that no other site's page can make the browser send
//! (`SameSite=Strict`), and, over TLS, that never travels in the clear
//! (`Secure`). It lasts a week or until the browser forgets it; the token
//! itself may expire or be removed sooner, and the page then asks again.

use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::WebState;
use super::pages::{PageResult, failure, render};
use super::view::{LoginPage, Nav};

/// How long the browser keeps the sign-in.
const COOKIE_SECONDS: u64 = 7 * 24 * 3600;

/// The sign-in form's fields. No `Debug`: it holds a token.
#[derive(Deserialize)]
pub(super) struct SignIn {
    token: String,
}

fn nav(state: &WebState) -> Nav {
    Nav {
        page: "login",
        peer: String::new(),
        refresh: String::new(),
        gated: state.gate.required,
    }
}

/// `GET /login`: the form.
pub(super) async fn form(State(state): State<WebState>) -> PageResult {
    render(&LoginPage {
        nav: nav(&state),
        error: None,
    })
}

/// `POST /login`: checks the token and keeps it in the cookie.
pub(super) async fn sign_in(State(state): State<WebState>, Form(form): Form<SignIn>) -> PageResult {
    let grant = state.gate.grant(&form.token).await.map_err(|e| {
        failure(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot check the token now: {e}"),
        )
    })?;
    let token = crate::tokens::TokenText::parse(&form.token).map(|t| t.reveal());
    let (Some(_), Some(token)) = (grant, token) else {
        let page = LoginPage {
            nav: nav(&state),
            error: Some(
                "That token is not valid here: it was removed, has expired, or belongs to another swarm."
                    .into(),
            ),
        };
        let html = render(&page)?;
        return Ok((StatusCode::UNAUTHORIZED, html).into_response());
    };
    let secure = if state.gate.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_SECONDS}{secure}",
        state.gate.cookie_name()
    );
    Ok((
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Redirect::to("/"),
    )
        .into_response())
}

/// `POST /logout`: forgets the cookie.
pub(super) async fn sign_out(State(state): State<WebState>) -> Response {
    let secure = if state.gate.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        state.gate.cookie_name()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}
