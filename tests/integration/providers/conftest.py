from tests.fakes.fixtures import fake_openai, fake_sarvam  # noqa: F401  (fixtures)
