FROM python:3.11.14 AS b
RUN uv pip sync requirements.lock && pip install uv
FROM b
USER app
