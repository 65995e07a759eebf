-- Facts about this database itself. 'database_id': a random id written on first use and never
-- changed; the Redis cache carries it in its marker key, so that an emptied cache (or one filled
-- from another database) is recognized and refilled.
create table meta (
    key text primary key,
    value text not null
);

-- Time-limited exclusive claims on background jobs, shared by every instance on this database
-- (e.g. 'cache-refill': one instance refills an emptied cache at a time). A holder renews its
-- lease while it works; one that dies loses it when expires_at (RFC 3339, UTC) passes.
create table leases (
    name text primary key,
    holder text not null,
    expires_at text not null
);

-- Readiness probes: each instance rewrites its own row, proving that a commit reaches the disk.
create table health_probes (
    instance text primary key,
    probed_at text not null
);
