-- The console's sessions: a random id in the browser's cookie, mapped here to the desk user and
-- the token they signed in with, shared by every instance. Only the id's SHA-256 is stored, so
-- that a copy of this table opens no session. A session ends on sign-out, when its token is
-- revoked, after the idle timeout, and at `expires_at` whatever its use.
create table desk_sessions (
    id_hash      text primary key,
    user_name    text not null,
    -- SHA-256 of the desk token, as the tokens file holds it: a session ends with its token.
    token_hash   text not null,
    created_at   timestamptz not null,
    last_seen_at timestamptz not null,
    expires_at   timestamptz not null
);

create index desk_sessions_expires on desk_sessions (expires_at);
create index desk_sessions_last_seen on desk_sessions (last_seen_at);
