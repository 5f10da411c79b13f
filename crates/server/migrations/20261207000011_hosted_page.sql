-- The hosted payment page (GET /pay/{id}) and payment links: whether the session is a link, whether the
-- customer returns to the hosted page (no merchant return_url: `return_url` then holds the page's URL), and
-- the page's theme, language and success URL.
ALTER TABLE sessions ADD COLUMN link BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN hosted_return BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN page_theme TEXT;
ALTER TABLE sessions ADD COLUMN page_locale TEXT;
ALTER TABLE sessions ADD COLUMN success_url TEXT;
