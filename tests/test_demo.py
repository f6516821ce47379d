"""The demo page (demo/app.py): its functions called directly, and the running app driven in headless Chromium."""

import importlib.util
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from helpers import REPO_ROOT
from saved_text_vaes import save_text_vae

DEMO_DIR = REPO_ROOT / "demo"


def load_app_module():
    spec = importlib.util.spec_from_file_location("twrvae_demo_app", DEMO_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app_module():
    return load_app_module()


@pytest.fixture(scope="module")
def texts(ptb_lines):
    return [line for line in ptb_lines if 5 <= len(line.split()) <= 10 and "<unk>" not in line][:12]


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    return save_text_vae(tmp_path_factory.mktemp("demo") / "tiny-twrvae", tokenizer)


@pytest.fixture(scope="module")
def model(folder):
    return AutoModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def app(app_module, folder, texts):
    return app_module.DemoApp(app_module.load_pipeline(folder, device="cpu"), evaluation_texts=texts)


def test_the_space_layout():
    front_matter = re.match(r"---\n(.*?)\n---\n", (DEMO_DIR / "README.md").read_text(), re.S)
    assert front_matter, "demo/README.md must start with the Space's YAML front matter"
    fields = dict(line.split(": ", 1) for line in front_matter.group(1).splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    requirements = (DEMO_DIR / "requirements.txt").read_text()
    for package in ("torch", "transformers", "gradio", "matplotlib"):
        assert re.search(rf"^{package}\b", requirements, re.M), package


def test_sample(app, model, tokenizer):
    output, message = app.sample(3, temperature=0.5, decoding="greedy", seed=4, max_new_tokens=6)
    expected = model.sample(3, tokenizer, temperature=0.5, generator=torch.Generator().manual_seed(4), max_new_tokens=6)
    assert output.splitlines() == expected and "3 samples" in message
    beams, _ = app.sample(2, decoding="beam search", num_beams=3, seed=4, max_new_tokens=6)
    assert beams.splitlines() == model.sample(2, tokenizer, generator=torch.Generator().manual_seed(4),
                                              num_beams=3, max_new_tokens=6)  # fmt: skip
    sampled, message = app.sample(2, decoding="top-p sampling", top_p=0.5, seed=1, max_new_tokens=6)
    assert len(sampled.splitlines()) == 2 and "top-p sampling" in message


def test_reconstruct_and_interpolate(app, model, tokenizer, texts):
    output, _ = app.reconstruct(texts[0])
    assert output == model.reconstruct(texts[:1], tokenizer, max_new_tokens=40)[0]
    rows, slider, point, path, message = app.interpolate(texts[0], texts[1], steps=5, method="linear")
    alphas, expected = model.interpolate(texts[0], texts[1], tokenizer, steps=5, max_new_tokens=40)
    assert rows == [[f"{a:.2f}", t] for a, t in zip(alphas, expected, strict=True)]
    assert slider.maximum == 4 and slider.value == 2 and point == f"alpha = 0.50: {expected[2]}"
    assert app.point(4, path) == f"alpha = 1.00: {expected[4]}" and "5 points" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "⚠️ The text is empty"),
        ("qqqzz zzyyq", "⚠️ The text ('qqqzz zzyyq') has no word in the model's vocabulary"),
        (" ".join(["the"] * 40), "⚠️ The text is 40 words long; this model reads and writes at most 18"),
    ],
)
def test_bad_input_is_a_message_not_a_stack_trace(app, text, message):
    output, shown = app.reconstruct(text)
    assert output == "" and shown.startswith(message) and "Traceback" not in shown
    rows, _, _, _, shown = app.interpolate("the company said", text)
    assert rows == [] and shown.startswith(message.replace("The text", "Text 2"))


def test_the_model_s_own_vector_has_its_control(app_module, tokenizer, texts, tmp_path):
    folder = save_text_vae(tmp_path / "with-vector", tokenizer)
    model = AutoModel.from_pretrained(folder).eval()
    model.add_attribute_vector("positive", model.attribute_vector(texts[:6], texts[6:], tokenizer))
    model.save_pretrained(folder)
    app = app_module.DemoApp(app_module.load_pipeline(folder, device="cpu"), evaluation_texts=texts)
    demo = app_module.build_demo(app)  # which builds the page's latent-arithmetic tab, and its own-vector control
    assert "own-strength" in str(demo.config)
    rows, message = app.arithmetic.shift_own("positive", texts[0], strength=2.0)
    expected = model.shift(texts[:1], "positive", tokenizer, strength=2.0, max_new_tokens=40)[0]
    assert rows == [[texts[0], model.reconstruct(texts[:1], tokenizer, max_new_tokens=40)[0], expected]]
    assert "'positive'" in message and "strength 2" in message
    rows, message = app.arithmetic.shift_own("negative", texts[0])
    assert rows == [] and "no vector 'negative' (it has: ['positive'])" in message


def test_latent_map(app, app_module, texts):
    figure, message = app.latent_map("pasted sentences", "\n".join(texts[:5]) + "\n\n")
    offsets = figure.axes[0].collections[0].get_offsets()
    assert offsets.shape == (5, 2) and message.startswith("5 sentences")
    figure, message = app.latent_map("evaluation set", "")
    assert figure.axes[0].collections[0].get_offsets().shape == (len(texts), 2)
    assert app.latent_map("pasted sentences", "one sentence")[1].startswith("⚠️ The map needs at least 3")
    # the map is a PCA: points on a line in latent space have all their variance on the first axis
    line = torch.linspace(-1, 1, 7)[:, None] * torch.tensor([[1.0, 2.0, -1.0]])
    points, explained = app_module.principal_components(line, 2)
    assert explained[0] == pytest.approx(1.0) and points[:, 1].abs().max() < 1e-5
    assert points[:, 0].abs().tolist() == pytest.approx((line.norm(dim=1)).tolist(), abs=1e-5)


def test_a_collapsed_model_is_flagged(app, app_module, tokenizer, texts, tmp_path):
    assert not app.collapse["collapsed"] and "The latent is in use" in app.banner()
    collapsed = save_text_vae(tmp_path / "collapsed", tokenizer, collapsed=True)
    for evaluation in (texts, None):  # reconstructions of the evaluation set, or else prior samples
        flagged = app_module.DemoApp(app_module.load_pipeline(collapsed, device="cpu"), evaluation_texts=evaluation)
        assert flagged.collapse["collapsed"] and "This model has collapsed" in flagged.banner()


def test_evaluation_set_from_a_file_or_the_training_corpus(app_module, folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TWRVAE_EVAL_FILE", str(tmp_path / "eval.txt"))
    (tmp_path / "eval.txt").write_text("a b c\n\nd e f\n")
    assert app_module.load_evaluation_texts(folder) == (["a b c", "d e f"], None)
    monkeypatch.delenv("TWRVAE_EVAL_FILE")
    texts, reason = app_module.load_evaluation_texts(folder)
    assert texts is None and "TWRVAE_EVAL_FILE" in reason


# The running app in a real browser.


def find_browser():
    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no Chromium here: the browser test needs Debian's `chromium` and `chromium-driver` packages "
            "(bash scripts/install_browser.sh, which .ci/run calls)"
        )
    return browser, driver


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(app, app_module):
    demo = app_module.build_demo(app)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_the_page_in_headless_chromium(served, app, model, tokenizer, texts, tmp_path):
    browser, driver_path = find_browser()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed by the `demo` extra")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    wait = WebDriverWait(driver, 60)

    def tab(name):
        driver.find_element(By.XPATH, f"//button[@role='tab'][contains(., '{name}')]").click()

    def value(elem_id):
        return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea").get_attribute("value")

    def type_into(elem_id, text):
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea"))
        box.clear()
        box.send_keys(text)

    try:
        driver.get(served)
        banner = wait.until(lambda d: d.find_element(By.ID, "model-banner"))
        assert "The latent is in use" in banner.text

        driver.find_element(By.ID, "sample-button").click()
        samples = model.sample(5, tokenizer, generator=torch.Generator().manual_seed(0), max_new_tokens=40)
        wait.until(lambda d: value("sample-output") != "")
        assert value("sample-output").splitlines() == samples

        tab("Reconstruct")
        type_into("reconstruct-input", texts[0])
        driver.find_element(By.ID, "reconstruct-button").click()
        wait.until(lambda d: value("reconstruct-output") != "")
        assert value("reconstruct-output") == model.reconstruct(texts[:1], tokenizer, max_new_tokens=40)[0]
        type_into("reconstruct-input", "qqqzz zzyyq")
        driver.find_element(By.ID, "reconstruct-button").click()
        wait.until(
            lambda d: "has no word in the model's vocabulary" in d.find_element(By.ID, "reconstruct-message").text
        )
        assert value("reconstruct-output") == "" and "Traceback" not in driver.page_source

        tab("Interpolate")
        type_into("interpolate-a", texts[0])
        type_into("interpolate-b", texts[1])
        driver.find_element(By.ID, "interpolate-button").click()
        alphas, path = model.interpolate(texts[0], texts[1], tokenizer, steps=11, method="slerp", max_new_tokens=40)
        wait.until(lambda d: value("interpolate-point") != "")
        assert value("interpolate-point") == f"alpha = {alphas[5]:.2f}: {path[5]}"
        table = driver.find_element(By.ID, "interpolate-table").text
        for text in (path[0], path[5], path[-1]):
            assert text in table
        screenshot = tmp_path / "demo.png"
        assert driver.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:4] == b"\x89PNG"
        if os.environ.get("TWRVAE_DEMO_SCREENSHOT"):  # how docs/demo.png is made
            Path(os.environ["TWRVAE_DEMO_SCREENSHOT"]).write_bytes(screenshot.read_bytes())
    finally:
        driver.quit()
